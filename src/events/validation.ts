import { BatchTooLargeError, InvalidEventError } from '../errors.js';
import { assertStorableString, freezeJson, isStorable, JsonWalk, MAX_BYTES_PER_CHAR } from './json-copy.js';
import type { AnyEvent, EventMetadata } from './types.js';

export { assertAppendableStreamId, assertReadableStreamId, assertValidStreamId, MAX_STREAM_ID_LENGTH } from './stream-id.js';
export { deepFreezeJson, MAX_JSON_DEPTH, parseStoredJson } from './json-copy.js';

export const MAX_EVENT_TYPE_LENGTH = 256;

export interface EventLimits {
  /** Most events one append (or one appendMany in total) may carry. */
  readonly maxEventsPerAppend: number;
  /** Most UTF-8 bytes the JSON of one event's data plus metadata may take. */
  readonly maxEventBytes: number;
}

export const DEFAULT_EVENT_LIMITS: EventLimits = Object.freeze({
  maxEventsPerAppend: 10_000,
  maxEventBytes: 1_048_576,
});

/**
 * An event ready for storage: validated, deeply copied and frozen, so later mutation of the
 * caller's objects cannot change what was stored, and with its JSON computed once for backends
 * that store text.
 */
export interface PreparedEvent {
  readonly type: string;
  readonly data: unknown;
  readonly metadata: EventMetadata;
  /** JSON of `data`. */
  readonly dataJson: string;
  /** JSON of `metadata`. */
  readonly metadataJson: string;
}

const EMPTY_METADATA: EventMetadata = Object.freeze({});
const EMPTY_METADATA_JSON = '{}';

/**
 * The last few metadata objects made by `frozenMetadata`, known to be deep-frozen plain JSON that
 * passes validation, with the upper bound of their JSON bytes: appends share them as they are,
 * without another copy. A small ring of strong references rather than a WeakMap (whose upkeep cost
 * more than the copies it saved): a command's events are appended soon after it is dispatched,
 * and a metadata object that has left the ring is simply copied, as any other.
 */
const TRUSTED = 8;
const trustedMetadata: Array<object | undefined> = new Array<object | undefined>(TRUSTED).fill(undefined);
const trustedBytes: number[] = new Array<number>(TRUSTED).fill(0);
let trustedNext = 0;

/** The JSON bytes bound of a metadata object in the ring, or -1 when it is not there. */
function trustedBytesOf(metadata: object): number {
  for (let i = 0; i < TRUSTED; i++) if (trustedMetadata[i] === metadata) return trustedBytes[i]!;
  return -1;
}

/**
 * @internal `{ correlationId, causationId }` as a frozen object that appends store without copying
 * it (the command bus makes one per command). Ids that no store could keep are left to the
 * append's validation, which reports them.
 */
export function frozenMetadata(correlationId: string, causationId: string): EventMetadata & {
  readonly correlationId: string;
  readonly causationId: string;
} {
  const metadata = Object.freeze({ correlationId, causationId });
  if (typeof correlationId === 'string' && typeof causationId === 'string' && isStorable(correlationId) && isStorable(causationId)) {
    // The bound freezeJson's walk would find: braces, then per key its text + 4 and its string + 2.
    const keys = MAX_BYTES_PER_CHAR * ('correlationId'.length + 'causationId'.length) + 8;
    trustedMetadata[trustedNext] = metadata;
    trustedBytes[trustedNext] = 2 + keys + MAX_BYTES_PER_CHAR * (correlationId.length + causationId.length) + 4;
    trustedNext = (trustedNext + 1) % TRUSTED;
  }
  return metadata;
}

/**
 * Validates and freezes one append's events. Throws `InvalidEventError` or `BatchTooLargeError`
 * before anything is written. `metadataDefaults` are merged under each event's own metadata; events
 * without their own share one frozen copy of them. A metadata object given to several events of
 * the append is copied once and shared too.
 */
export function prepareEvents(
  streamId: string,
  events: readonly AnyEvent[],
  limits: EventLimits = DEFAULT_EVENT_LIMITS,
  metadataDefaults?: EventMetadata,
): PreparedEvent[] {
  if (!Array.isArray(events)) {
    throw new InvalidEventError(`Events for stream '${streamId}' must be an array.`, { streamId });
  }
  if (events.length > limits.maxEventsPerAppend) {
    throw new BatchTooLargeError(
      `Append to stream '${streamId}' carries ${events.length} events; the limit is ` +
        `${limits.maxEventsPerAppend} per append. Split it into smaller appends (or raise maxEventsPerAppend).`,
      limits.maxEventsPerAppend,
      events.length,
    );
  }
  const prepared = new Array<PreparedEvent>(events.length);
  // Reuse the idle walk; a nested call (a getter in the data that appends) gets its own.
  const walk = idleWalk ?? new Walk();
  idleWalk = undefined;
  try {
    walk.streamId = streamId;
    walk.defaults = metadataDefaults;
    for (let index = 0; index < events.length; index++) {
      walk.index = index;
      prepared[index] = prepareEvent(walk, events[index], limits);
    }
  } finally {
    walk.begin('');
    walk.defaults = undefined;
    walk.lastMetadata = undefined;
    walk.lastFrozenMetadata = EMPTY_METADATA;
    idleWalk = walk;
  }
  return prepared;
}

function isPlainObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A prepared event. Its JSON is computed on first use only: the in-memory store never needs it,
 * and the size limit is checked from an upper bound gathered during the copy (see `Walk.bytes`).
 */
class PreparedJsonEvent implements PreparedEvent {
  constructor(
    readonly type: string,
    readonly data: unknown,
    readonly metadata: EventMetadata,
    private cachedDataJson: string | undefined,
    private cachedMetadataJson: string | undefined,
  ) {}

  get dataJson(): string {
    return (this.cachedDataJson ??= JSON.stringify(this.data));
  }

  get metadataJson(): string {
    return (this.cachedMetadataJson ??=
      this.metadata === EMPTY_METADATA ? EMPTY_METADATA_JSON : JSON.stringify(this.metadata));
  }
}

/** A copy walk with the state one append keeps across its events (metadata shared between them). */
class Walk extends JsonWalk {
  /** The append's metadata defaults, merged under each event's own metadata. */
  defaults: EventMetadata | undefined = undefined;
  /** The last metadata source copied in this append, and its copy: reused for the same source. */
  lastMetadata: object | undefined = undefined;
  lastFrozenMetadata: EventMetadata = EMPTY_METADATA;
  lastMetadataBytes = 0;
}

let idleWalk: Walk | undefined;

function prepareEvent(walk: Walk, event: unknown, limits: EventLimits): PreparedEvent {
  const { streamId, index } = walk;
  if (typeof event !== 'object' || event === null) {
    throw new InvalidEventError(`Event #${index} for stream '${streamId}' is not an object.`, { streamId, index });
  }
  const { type, data, metadata } = event as { type?: unknown; data?: unknown; metadata?: unknown };
  if (typeof type !== 'string' || type.length === 0 || type.length > MAX_EVENT_TYPE_LENGTH) {
    throw new InvalidEventError(
      `Event #${index} for stream '${streamId}' needs a non-empty string 'type' of at most ` +
        `${MAX_EVENT_TYPE_LENGTH} characters.`,
      { streamId, index },
    );
  }
  walk.type = type;
  walk.begin('type');
  assertStorableString(walk, type);
  if (data === undefined) {
    throw new InvalidEventError(
      `Event #${index} ('${type}') for stream '${streamId}' has undefined data; use null or an object.`,
      { streamId, index, path: 'data' },
    );
  }
  walk.bytes = 0;
  walk.begin('data');
  const frozenData = freezeJson(walk, data);
  let frozenMetadata: EventMetadata = EMPTY_METADATA;
  // The event's own metadata over the append's defaults, checked as if the event carried the merge.
  const defaults = walk.defaults;
  const source =
    metadata === undefined ? defaults : defaults === undefined ? metadata : { ...defaults, ...(metadata as object) };
  if (source !== undefined) {
    if (!isPlainObject(source)) {
      throw new InvalidEventError(
        `Event #${index} ('${type}') for stream '${streamId}': metadata must be a plain object.`,
        { streamId, index, path: 'metadata' },
      );
    }
    // A merge is new for each event; a source given as is may recur (the defaults, say).
    frozenMetadata = source === metadata || source === defaults ? sharedMetadata(walk, source) : copyMetadata(walk, source);
  } else {
    walk.bytes += EMPTY_METADATA_JSON.length;
  }
  // The bound is exact enough for ordinary events; only one that might exceed the limit pays
  // for its JSON text and an exact byte count (and keeps the text for the adapter).
  if (walk.bytes > limits.maxEventBytes) {
    const dataJson = JSON.stringify(frozenData);
    const metadataJson = frozenMetadata === EMPTY_METADATA ? EMPTY_METADATA_JSON : JSON.stringify(frozenMetadata);
    const bytes = Buffer.byteLength(dataJson, 'utf8') + Buffer.byteLength(metadataJson, 'utf8');
    if (bytes > limits.maxEventBytes) {
      throw new BatchTooLargeError(
        `Event #${index} ('${type}') for stream '${streamId}' is ${bytes} bytes of JSON; the limit is ` +
          `${limits.maxEventBytes}. Store large payloads elsewhere and reference them from the event.`,
        limits.maxEventBytes,
        bytes,
      );
    }
    return new PreparedJsonEvent(type, frozenData, frozenMetadata, dataJson, metadataJson);
  }
  return new PreparedJsonEvent(type, frozenData, frozenMetadata, undefined, undefined);
}

/**
 * The frozen metadata for `source`: itself when it is already validated and frozen, the copy made
 * for the previous event when it is the same object, else a new copy. Adds its bytes to the walk.
 */
function sharedMetadata(walk: Walk, source: object): EventMetadata {
  const known = trustedBytesOf(source);
  if (known >= 0) {
    walk.bytes += known;
    return source as EventMetadata;
  }
  if (source === walk.lastMetadata) {
    walk.bytes += walk.lastMetadataBytes;
    return walk.lastFrozenMetadata;
  }
  const before = walk.bytes;
  const frozen = copyMetadata(walk, source);
  walk.lastMetadataBytes = walk.bytes - before;
  walk.lastMetadata = source;
  walk.lastFrozenMetadata = frozen;
  return frozen;
}

/** Validates, copies and freezes one metadata object, adding its bytes to the walk. */
function copyMetadata(walk: Walk, source: object): EventMetadata {
  walk.begin('metadata');
  return freezeJson(walk, source) as EventMetadata;
}
