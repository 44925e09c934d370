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
