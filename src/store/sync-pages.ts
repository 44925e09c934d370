import type { AnyEvent, EventMetadata, RecordedEvent } from '../events/types.js';
import type { AppendResult } from './event-store.js';
import type { ExpectedVersion } from './expected-version.js';

/**
 * @internal Offered by streams whose events are already in memory (the in-memory store): the same
 * pages as `pages()`, synchronously. Loading folds them without an await per page; any other
 * stream is read through `pages()`.
 */
export const syncPages = Symbol('eventfold.syncPages');

/** @internal */
export interface SyncPagedStream<T> {
  [syncPages](): Iterable<readonly T[]>;
}

/**
 * @internal Offered by stores whose append is one synchronous step (the in-memory store): the same
 * append as `append()`, without the promise, and with `metadata` merged under each event's own
 * (one shared frozen copy, instead of a merged copy of every event). Returns `undefined` when
 * `append()` was replaced (a subclass or a test spy), so that every append still goes through it.
 */
export const syncAppend = Symbol('eventfold.syncAppend');

/** @internal */
export interface SyncAppendStore {
  [syncAppend](
    streamId: string,
    events: readonly AnyEvent[],
    expectedVersion: ExpectedVersion,
    metadata: EventMetadata | undefined,
  ): AppendResult | undefined;
}

/**
 * @internal Offered by stores that keep each stream as an array in memory: the stream's events as
 * stored now (read-only; it grows with later appends), `null` when the stream does not exist, or
 * `undefined` when `readStream()` was replaced, so that every read still goes through it. Checks
 * the store is open and the stream id is valid, as `readStream` does.
 */
export const syncStream = Symbol('eventfold.syncStream');

/** @internal */
export interface SyncStreamStore {
  [syncStream](streamId: string): readonly RecordedEvent[] | null | undefined;
}
