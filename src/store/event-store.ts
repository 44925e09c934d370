import type { AnyEvent, RecordedEvent } from '../events/types.js';
import type { EventStream } from './event-stream.js';
import type { ExpectedVersion } from './expected-version.js';

export interface AppendOptions {
  /** Required on purpose: every write states what it believes, even if that is `'any'`. */
  readonly expectedVersion: ExpectedVersion;
}

export interface StreamAppend {
  readonly streamId: string;
  readonly events: readonly AnyEvent[];
  readonly expectedVersion: ExpectedVersion;
}

export interface AppendResult {
  readonly streamId: string;
  /** The stream's version after the append (its event count). */
  readonly version: number;
  /** Global position of the last event appended; 0 when the append carried no events. */
  readonly position: number;
  /** The events as recorded, frozen, in order. */
  readonly events: readonly RecordedEvent[];
}

export interface ReadStreamOptions {
  /** First version to read (inclusive). Default: 1, or the last version when reading backwards. */
  readonly fromVersion?: number;
  /** Last version to read (inclusive). Default: the end (or 1 when reading backwards). */
  readonly toVersion?: number;
  /** Newest first. With `fromVersion`, reading goes down from it; `toVersion` is then the lower bound. */
  readonly backwards?: boolean;
  /** Most events to return. */
  readonly limit?: number;
}

/**
 * Which events a `readAll` returns. An event passes when its type is one of `types` (if given)
 * AND its stream's category — the part of the stream id before the first `-`, as a Repository
 * names streams (`user-42` → `user`) — is one of `categories` (if given). Positions are those of
 * the whole log, so a filtered read has gaps; `limit` counts the events returned.
 * SQLite and PostgreSQL filter in the database, on indexes.
 */
export interface ReadAllFilter {
  readonly types?: readonly string[];
  readonly categories?: readonly string[];
}

export interface ReadAllOptions {
  /** First global position to read (inclusive). Default: the start of the log. */
  readonly fromPosition?: number;
  /** Most events to return. */
  readonly limit?: number;
  /** Only events of these types and/or stream categories. Default: every event. */
  readonly filter?: ReadAllFilter;
}

/**
 * What an engine can promise. Callers and `describeEventStoreConformance` read it; a store never
 * fakes a capability it lacks: it refuses the call with `CapabilityNotSupportedError` and writes
 * nothing.
 */
export interface EventStoreCapabilities {
  /**
   * `appendMany` across two or more distinct streams commits atomically. When false, such a call
   * rejects with `CapabilityNotSupportedError` (capability `'atomicMultiStreamAppend'`) before any
   * write; an `appendMany` that touches a single stream still works.
   */
  readonly atomicMultiStreamAppend: boolean;
}

export type EventStoreCapability = keyof EventStoreCapabilities;

/** The capabilities of the in-memory, SQLite and PostgreSQL stores: everything. */
export const FULL_CAPABILITIES: EventStoreCapabilities = Object.freeze({ atomicMultiStreamAppend: true });

/**
 * The port every event store implements. Guarantees (proven by `describeEventStoreConformance`):
 * - an append is atomic: all of its events are stored or none; `appendMany` is atomic across streams
 *   where `capabilities.atomicMultiStreamAppend` holds, and refused before any write where it does not;
 * - a failed expected-version check throws `ConcurrencyError` with the real version and writes nothing;
 * - versions within a stream are 1, 2, 3, … without gaps;
 * - `readAll` returns events in increasing position order, and a reader that has seen position p
 *   never later finds a newly committed event below p;
 * - bad input (invalid stream id, non-JSON data, oversized batch) is rejected before any write;
 * - after `close()`, every call rejects with `StoreClosedError`.
 */
export interface EventStore {
  /** What this store's engine can promise; see `EventStoreCapabilities`. */
  readonly capabilities: EventStoreCapabilities;
  append(streamId: string, events: readonly AnyEvent[], options: AppendOptions): Promise<AppendResult>;
  /** Appends to several streams as one atomic step; each entry has its own expected version. */
  appendMany(appends: readonly StreamAppend[]): Promise<AppendResult[]>;
  /** Reads one stream. A stream that does not exist rejects with `StreamNotFoundError` when iterated. */
  readStream(streamId: string, options?: ReadStreamOptions): EventStream<RecordedEvent>;
  /** Reads the global log in position order. */
  readAll(options?: ReadAllOptions): EventStream<RecordedEvent>;
  /** The stream's version: its number of events, 0 when it does not exist. */
  streamVersion(streamId: string): Promise<number>;
  /** The position of the last event a `readAll` reader can see now (0 for an empty store). */
  headPosition(): Promise<number>;
  close(): Promise<void>;
}
