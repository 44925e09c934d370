export * from './errors.js';
export * from './logging.js';
export * from './backoff.js';
export * from './events/types.js';
export {
  assertReadableStreamId,
  assertValidStreamId,
  DEFAULT_EVENT_LIMITS,
  MAX_EVENT_TYPE_LENGTH,
  MAX_JSON_DEPTH,
  MAX_STREAM_ID_LENGTH,
  type EventLimits,
} from './events/validation.js';
export * from './store/event-store.js';
export * from './store/event-stream.js';
export { categoryOf, MAX_FILTER_ENTRIES } from './store/read-filter.js';
export * from './store/expected-version.js';
export * from './store/in-memory-event-store.js';
export * from './snapshots/snapshot-store.js';
export { InMemorySnapshotStore } from './snapshots/in-memory-snapshot-store.js';
export { Aggregate, assertNever, type AggregateClass, type EventsOf, type Snapshottable } from './aggregate/aggregate.js';
export * from './repository/repository.js';
export * from './commands/command-bus.js';
export * from './queries/query-bus.js';
export * from './bus/event-bus.js';
export * from './repository/unit-of-work.js';
export * from './projections/index.js';
export * from './publishing/index.js';
export * from './subscriptions/index.js';
// Consumers: the loop projection runners share (lock, retry with backoff, status), for other consumers too.
export * from './consumers/index.js';
// Group commit (SQLite and PostgreSQL stores).
export type { GroupCommitOptions, GroupCommitSetting, GroupCommitStats } from './store/group-commit.js';
export {
  DEFAULT_LIST_STREAMS_LIMIT,
  MAX_LIST_STREAMS_LIMIT,
  type CheckpointSummary,
  type EventStoreCatalog,
  type ListStreamsOptions,
  type StreamSummary,
} from './store/catalog.js';
// Schema evolution, validation, idempotency, stream lifecycle; crypto-shredding of personal data.
export * from './evolution/index.js';
export * from './privacy/index.js';
