export {
  SqliteEventStore,
  DEFAULT_SQLITE_PAGE_SIZE,
  type SqliteAppendHook,
  type SqliteAppendedListener,
  type SqliteEventStoreOptions,
} from './sqlite-event-store.js';
export { SqliteSnapshotStore, type SqliteSnapshotStoreOptions } from './sqlite-snapshot-store.js';
export {
  DEFAULT_BUSY_TIMEOUT_MS,
  type SqliteConnectionOptions,
  type SqliteSynchronous,
  type SqliteTuningOptions,
} from './connection.js';
export { UnsupportedSchemaVersionError } from './schema.js';
export {
  addInlineSqliteProjection,
  PROJECTION_MIGRATIONS,
  PROJECTIONS_COMPONENT,
  SqliteCheckpointStore,
  SqliteProjectionLock,
  SqliteProjectionRunner,
  SqliteProjectionTarget,
  type SqliteProjectionContext,
  type SqliteProjectionRunnerOptions,
} from './projections.js';
export { SqliteInbox, type SqliteInboxOptions } from './inbox.js';
export { SqliteDeadLetterStore } from './projection-dead-letters.js';
export { classifySqliteError } from './sqlite-transient.js';
export { SqliteCatalog } from './catalog.js';
