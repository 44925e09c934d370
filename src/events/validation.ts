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
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(streamId)) {
    throw new InvalidStreamIdError(streamId, 'it contains control characters');
  }
  if (streamId.trim() !== streamId) {
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
 * Validates and freezes one append's events. Throws `InvalidEventError` or `BatchTooLargeError`
 * before anything is written. `metadataDefaults` are merged under each event's own metadata.
 */
export function prepareEvents(
  streamId: string,
  events: readonly AnyEvent[],
  limits: EventLimits = DEFAULT_EVENT_LIMITS,
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
  for (let index = 0; index < events.length; index++) {
    prepared[index] = prepareEvent(streamId, events[index], index, limits);
  }
  return prepared;
}

function prepareEvent(streamId: string, event: unknown, index: number, limits: EventLimits): PreparedEvent {
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
  if (data === undefined) {
    throw new InvalidEventError(
      `Event #${index} ('${type}') for stream '${streamId}' has undefined data; use null or an object.`,
      { streamId, index, path: 'data' },
    );
  }
  const frozenData = freezeJson(data, streamId, index, type, 'data', new Set());
  let frozenMetadata: EventMetadata = EMPTY_METADATA;
  let metadataJson = EMPTY_METADATA_JSON;
  if (metadata !== undefined) {
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
      throw new InvalidEventError(
        `Event #${index} ('${type}') for stream '${streamId}': metadata must be a plain object.`,
        { streamId, index, path: 'metadata' },
      );
    }
    frozenMetadata = freezeJson(metadata, streamId, index, type, 'metadata', new Set()) as EventMetadata;
    metadataJson = JSON.stringify(frozenMetadata);
  }
  const dataJson = JSON.stringify(frozenData);
  // Byte length only matters once the text could be near the limit; UTF-8 is at most 3 bytes per UTF-16 unit.
  const chars = dataJson.length + metadataJson.length;
  if (chars * 3 > limits.maxEventBytes) {
    const bytes = Buffer.byteLength(dataJson, 'utf8') + Buffer.byteLength(metadataJson, 'utf8');
    if (bytes > limits.maxEventBytes) {
      throw new BatchTooLargeError(
        `Event #${index} ('${type}') for stream '${streamId}' is ${bytes} bytes of JSON; the limit is ` +
          `${limits.maxEventBytes}. Store large payloads elsewhere and reference them from the event.`,
        limits.maxEventBytes,
        bytes,
      );
    }
  }
  return { type, data: frozenData, metadata: frozenMetadata, dataJson, metadataJson };
}

/**
 * Deep-copies a JSON value and freezes the copy. Rejects what JSON would silently change or drop
 * (functions, symbols, undefined, BigInt, NaN/Infinity, class instances such as Date or Map) and
 * cycles, so data always reads back exactly as written.
 */
function freezeJson(
  value: unknown,
  streamId: string,
  index: number,
  type: string,
  path: string,
  seen: Set<object>,
): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) {
        throw invalid(streamId, index, type, path, `${String(value)} is not representable in JSON`);
      }
      return value;
    case 'object': {
      if (value === null) return null;
      if (seen.has(value)) throw invalid(streamId, index, type, path, 'the value contains a cycle');
      seen.add(value);
      let copy: unknown;
      if (Array.isArray(value)) {
        const array = new Array<unknown>(value.length);
        for (let i = 0; i < value.length; i++) {
          array[i] = freezeJson(value[i], streamId, index, type, `${path}[${i}]`, seen);
        }
        copy = Object.freeze(array);
      } else {
        const proto = Object.getPrototypeOf(value) as unknown;
        if (proto !== Object.prototype && proto !== null) {
          const name = (value as { constructor?: { name?: string } }).constructor?.name ?? 'unknown';
          throw invalid(
            streamId,
            index,
            type,
            path,
            `a ${name} instance is not plain JSON (convert it first, e.g. a Date to an ISO string)`,
          );
        }
        const object: Record<string, unknown> = {};
        for (const key of Object.keys(value)) {
          const child = (value as Record<string, unknown>)[key];
          if (child === undefined) {
            throw invalid(streamId, index, type, `${path}.${key}`, 'undefined is not JSON (omit the key instead)');
          }
          object[key] = freezeJson(child, streamId, index, type, `${path}.${key}`, seen);
        }
        if (Object.getOwnPropertySymbols(value).length > 0) {
          throw invalid(streamId, index, type, path, 'symbol keys are not JSON');
        }
        copy = Object.freeze(object);
      }
      seen.delete(value);
      return copy;
    }
    case 'undefined':
      throw invalid(streamId, index, type, path, 'undefined is not JSON');
    default:
      throw invalid(streamId, index, type, path, `a ${typeof value} is not JSON`);
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
