import { BatchTooLargeError, InvalidEventError, InvalidStreamIdError } from '../errors.js';
import type { AnyEvent, EventMetadata } from './types.js';

export const MAX_STREAM_ID_LENGTH = 256;
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
 * Stream ids are non-empty, at most 256 characters, and free of control characters, so they are
 * safe as keys in every backend and readable in logs.
 */
export function assertValidStreamId(streamId: unknown): asserts streamId is string {
  if (typeof streamId !== 'string') {
    throw new InvalidStreamIdError(streamId, 'a stream id must be a string');
  }
  if (streamId.length === 0) throw new InvalidStreamIdError(streamId, 'it is empty');
  if (streamId.length > MAX_STREAM_ID_LENGTH) {
    throw new InvalidStreamIdError(streamId, `it is longer than ${MAX_STREAM_ID_LENGTH} characters`);
  }
  // A char loop rather than a regex: ids are checked on every read and append.
  for (let i = 0; i < streamId.length; i++) {
    const c = streamId.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) throw new InvalidStreamIdError(streamId, 'it contains control characters');
  }
  if (!(streamId as string & { isWellFormed(): boolean }).isWellFormed()) {
    throw new InvalidStreamIdError(streamId, 'it contains a lone UTF-16 surrogate (not valid Unicode)');
  }
  // Every character trim() removes is <= U+0020 or >= U+00A0: only such an edge needs the trim.
  const first = streamId.charCodeAt(0);
  const last = streamId.charCodeAt(streamId.length - 1);
  if ((first <= 0x20 || first >= 0xa0 || last <= 0x20 || last >= 0xa0) && streamId.trim() !== streamId) {
    throw new InvalidStreamIdError(streamId, 'it has leading or trailing whitespace');
  }
}

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

/**
 * State of one copy walk. Paths are kept as a stack of keys and turned into text only for an
 * error message, so a valid event costs no string building.
 */
class Walk {
  streamId = '';
  index = 0;
  type = '';
  root = '';
  /** Upper bound of the UTF-8 bytes of the JSON written so far. */
  bytes = 0;
  /** The objects and arrays being copied, outermost first: a repeat is a cycle. */
  readonly ancestors: object[] = [];
  /** Keys (strings) and indexes (numbers) from the root to the current value. */
  readonly keys: Array<string | number> = [];
  /** The append's metadata defaults, merged under each event's own metadata. */
  defaults: EventMetadata | undefined = undefined;
  /** The last metadata source copied in this append, and its copy: reused for the same source. */
  lastMetadata: object | undefined = undefined;
  lastFrozenMetadata: EventMetadata = EMPTY_METADATA;
  lastMetadataBytes = 0;

  begin(root: string): void {
    this.root = root;
    // Setting length is a slow call even when it changes nothing; they are empty after a clean walk.
    if (this.ancestors.length !== 0) this.ancestors.length = 0;
    if (this.keys.length !== 0) this.keys.length = 0;
  }

  path(): string {
    let path = this.root;
    for (const key of this.keys) path += typeof key === 'number' ? `[${key}]` : `.${key}`;
    return path;
  }

  fail(reason: string, path = this.path()): InvalidEventError {
    return invalid(this.streamId, this.index, this.type, path, reason);
  }
}

let idleWalk: Walk | undefined;

// Upper bounds of JSON text in UTF-8 bytes: a UTF-16 unit takes at most 6 (a \uXXXX escape).
const MAX_BYTES_PER_CHAR = 6;
const MAX_NUMBER_BYTES = 25;

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

/**
 * Deep-copies a JSON value and freezes the copy. Rejects what JSON would silently change or drop
 * (functions, symbols, undefined, BigInt, NaN/Infinity, class instances such as Date or Map) and
 * cycles, so data always reads back exactly as written.
 */
function freezeJson(walk: Walk, value: unknown): unknown {
  switch (typeof value) {
    case 'string':
      assertStorableString(walk, value);
      walk.bytes += MAX_BYTES_PER_CHAR * value.length + 2;
      return value;
    case 'boolean':
      walk.bytes += 5;
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw walk.fail(`${String(value)} is not representable in JSON`);
      walk.bytes += MAX_NUMBER_BYTES;
      // JSON writes -0 as 0; store 0 so every adapter reads back the same value.
      return value === 0 ? 0 : value;
    case 'object': {
      if (value === null) {
        walk.bytes += 4;
        return null;
      }
      const { ancestors, keys } = walk;
      if (ancestors.includes(value)) throw walk.fail('the value contains a cycle');
      ancestors.push(value);
      let copy: unknown;
      if (Array.isArray(value)) {
        const length = value.length;
        walk.bytes += 2 + length;
        const array = new Array<unknown>(length);
        for (let i = 0; i < length; i++) {
          keys.push(i);
          array[i] = freezeJson(walk, value[i]);
          keys.pop();
        }
        copy = Object.freeze(array);
      } else {
        const proto = Object.getPrototypeOf(value) as unknown;
        if (proto !== Object.prototype && proto !== null) {
          const name = (value as { constructor?: { name?: string } }).constructor?.name ?? 'unknown';
          throw walk.fail(`a ${name} instance is not plain JSON (convert it first, e.g. a Date to an ISO string)`);
        }
        const object: Record<string, unknown> = {};
        const ownKeys = Object.keys(value);
        walk.bytes += 2;
        for (let k = 0; k < ownKeys.length; k++) {
          const key = ownKeys[k]!;
          const child = (value as Record<string, unknown>)[key];
          if (!isStorable(key)) assertStorableString(walk, key, `${walk.path()} (a key)`);
          walk.bytes += MAX_BYTES_PER_CHAR * key.length + 4;
          keys.push(key);
          if (child === undefined) throw walk.fail('undefined is not JSON (omit the key instead)');
          const copied = freezeJson(walk, child);
          keys.pop();
          // Assigning '__proto__' would set the copy's prototype instead of a key: define it.
          if (key === '__proto__') Object.defineProperty(object, key, { value: copied, enumerable: true, writable: true, configurable: true });
          else object[key] = copied;
        }
        if (Object.getOwnPropertySymbols(value).length > 0) throw walk.fail('symbol keys are not JSON');
        copy = Object.freeze(object);
      }
      ancestors.pop();
      return copy;
    }
    case 'undefined':
      throw walk.fail('undefined is not JSON');
    default:
      throw walk.fail(`a ${typeof value} is not JSON`);
  }
}

function isStorable(value: string): boolean {
  return !value.includes('\u0000') && (value as string & { isWellFormed(): boolean }).isWellFormed();
}

/**
 * NUL characters and lone surrogates have no UTF-8 form: PostgreSQL rejects them and other
 * backends would change them, so they are refused up front, the same way for every adapter.
 */
function assertStorableString(walk: Walk, value: string, path?: string): void {
  if (value.includes('\u0000')) {
    throw walk.fail('a string contains a NUL (\\u0000) character, which no store keeps', path);
  }
  if (!(value as string & { isWellFormed(): boolean }).isWellFormed()) {
    throw walk.fail('a string contains a lone UTF-16 surrogate (not valid Unicode)', path);
  }
}

function invalid(streamId: string, index: number, type: string, path: string, reason: string): InvalidEventError {
  return new InvalidEventError(
    `Event #${index} ('${type}') for stream '${streamId}' cannot be stored: at ${path}, ${reason}.`,
    { streamId, index, path },
  );
}

/** Deep-freezes a value parsed from JSON (it has no cycles and only plain objects and arrays). */
export function deepFreezeJson<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) deepFreezeJson(value[i]);
    } else {
      for (const key in value) deepFreezeJson((value as Record<string, unknown>)[key]);
    }
  }
  return value;
}
