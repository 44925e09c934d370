import { BatchTooLargeError, InvalidArgumentError } from '../errors.js';
import type { EventMetadata, RecordedEvent } from '../events/types.js';
import { newId } from '../events/ids.js';
import {
  assertAppendableStreamId,
  assertReadableStreamId,
  DEFAULT_EVENT_LIMITS,
  prepareEvents,
  type EventLimits,
  type PreparedEvent,
} from '../events/validation.js';
import type { ReadAllOptions, ReadStreamOptions, StreamAppend } from './event-store.js';
import { assertValidExpectedVersion, type ExpectedVersion } from './expected-version.js';
import { resolveReadAllFilter, type ResolvedReadAllFilter } from './read-filter.js';

/** Shared input checks for every adapter, so all of them reject the same bad input the same way. */

export interface PreparedAppend {
  readonly streamId: string;
  readonly expectedVersion: ExpectedVersion;
  readonly events: PreparedEvent[];
}

/**
 * Validates one append. `metadataDefaults` (internal: the Repository's `save(…, { metadata })` on
 * stores that take it directly) are merged under each event's own metadata, see `prepareEvents`.
 */
export function prepareAppend(
  streamId: string,
  events: StreamAppend['events'],
  expectedVersion: unknown,
  limits: EventLimits = DEFAULT_EVENT_LIMITS,
  metadataDefaults?: EventMetadata,
): PreparedAppend {
  assertAppendableStreamId(streamId, expectedVersion === 'stream-exists' || (typeof expectedVersion === 'number' && expectedVersion >= 1));
  assertValidExpectedVersion(expectedVersion, streamId);
  return { streamId, expectedVersion, events: prepareEvents(streamId, events, limits, metadataDefaults) };
}

export function prepareAppendMany(
  appends: readonly StreamAppend[],
  limits: EventLimits = DEFAULT_EVENT_LIMITS,
): PreparedAppend[] {
  if (!Array.isArray(appends)) throw new InvalidArgumentError('appendMany takes an array of { streamId, events, expectedVersion }.');
  const seen = new Set<string>();
  let total = 0;
  const prepared: PreparedAppend[] = [];
  for (const entry of appends) {
    if (typeof entry !== 'object' || entry === null) {
      throw new InvalidArgumentError('appendMany takes an array of { streamId, events, expectedVersion }.');
    }
    const one = prepareAppend(entry.streamId, entry.events, entry.expectedVersion, limits);
    if (seen.has(one.streamId)) {
      throw new InvalidArgumentError(
        `appendMany names stream '${one.streamId}' twice; put all of its events in one entry.`,
      );
    }
    seen.add(one.streamId);
    total += one.events.length;
    if (total > limits.maxEventsPerAppend) {
      throw new BatchTooLargeError(
        `appendMany carries more than ${limits.maxEventsPerAppend} events in total; split it.`,
        limits.maxEventsPerAppend,
        appends.reduce((sum, a) => sum + (Array.isArray(a.events) ? a.events.length : 0), 0),
      );
    }
    prepared.push(one);
  }
  return prepared;
}

export function resolveLimits(overrides: Partial<EventLimits> | undefined): EventLimits {
  const limits = { ...DEFAULT_EVENT_LIMITS, ...overrides };
  if (!Number.isSafeInteger(limits.maxEventsPerAppend) || limits.maxEventsPerAppend < 1) {
    throw new InvalidArgumentError(`maxEventsPerAppend must be a positive integer, got ${limits.maxEventsPerAppend}.`);
  }
  if (!Number.isSafeInteger(limits.maxEventBytes) || limits.maxEventBytes < 1) {
    throw new InvalidArgumentError(`maxEventBytes must be a positive integer, got ${limits.maxEventBytes}.`);
  }
  return Object.freeze(limits);
}

/** Normalised `readStream` bounds: versions `low..high` inclusive, `limit` events at most. */
export interface StreamRange {
  readonly backwards: boolean;
  /** Lowest version to include. */
  readonly low: number;
  /** Highest version to include (`Infinity` = the end). */
  readonly high: number;
  readonly limit: number;
}

function optionalCount(name: string, value: unknown, min: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(`${name} must be an integer >= ${min}, got ${String(value)}.`);
  }
  return value;
}

export function resolveStreamRange(streamId: string, options: ReadStreamOptions | undefined): StreamRange {
  assertReadableStreamId(streamId);
  const from = optionalCount('fromVersion', options?.fromVersion, 0);
  const to = optionalCount('toVersion', options?.toVersion, 0);
  const limit = optionalCount('limit', options?.limit, 0) ?? Infinity;
  const backwards = options?.backwards === true;
  return backwards
    ? { backwards, high: from ?? Infinity, low: Math.max(1, to ?? 1), limit }
    : { backwards, low: Math.max(1, from ?? 1), high: to ?? Infinity, limit };
}

export interface LogRange {
  readonly fromPosition: number;
  readonly limit: number;
  readonly filter: ResolvedReadAllFilter | undefined;
}

export function resolveLogRange(options: ReadAllOptions | undefined): LogRange {
  const fromPosition = optionalCount('fromPosition', options?.fromPosition, 0) ?? 0;
  const limit = optionalCount('limit', options?.limit, 0) ?? Infinity;
  return { fromPosition, limit, filter: resolveReadAllFilter(options?.filter) };
}

/**
 * Builds the frozen `RecordedEvent`s of one append. `streamId` (default: the append's) lets a store
 * that keeps the stream's id already give its events that one string instead of another copy.
 */
export function recordEvents(
  append: PreparedAppend,
  firstVersion: number,
  positions: (index: number) => number,
  recordedAt: Date,
  eventIds?: readonly string[],
  streamId: string = append.streamId,
): RecordedEvent[] {
  const recorded = new Array<RecordedEvent>(append.events.length);
  for (let i = 0; i < append.events.length; i++) {
    const event = append.events[i]!;
    recorded[i] = Object.freeze({
      type: event.type,
      data: event.data,
      metadata: event.metadata,
      streamId,
      version: firstVersion + i,
      position: positions(i),
      eventId: eventIds?.[i] ?? newId(),
      recordedAt,
    }) as RecordedEvent;
  }
  return recorded;
}

/** Builds a frozen `RecordedEvent` from stored columns (data and metadata already parsed). */
export function recordedFromRow(
  streamId: string,
  version: number,
  position: number,
  type: string,
  data: unknown,
  metadata: EventMetadata,
  eventId: string,
  recordedAt: Date,
): RecordedEvent {
  return Object.freeze({
    type,
    data,
    metadata,
    streamId,
    version,
    position,
    eventId,
    recordedAt,
  }) as RecordedEvent;
}
