export { PostgresEventStore, type PostgresAppendHook, type PostgresEventStoreOptions, type PostgresNotifyMode } from './postgres-event-store.js';
export { PostgresSnapshotStore, type PostgresSnapshotStoreOptions } from './postgres-snapshot-store.js';
export { guardPool, POSTGRES_POOL_DEFAULTS, type PostgresConnectionOptions, type PostgresSchemaOptions } from './connection.js';
export { POSTGRES_DDL, POSTGRES_SCHEMA_VERSION, postgresSchemaSql } from './ddl.js';
export { assertValidSchemaName, DEFAULT_POSTGRES_SCHEMA, notifyChannel } from './schema-name.js';
export {
  addInlinePostgresProjection,
  classifyPgError,
  migrateProjectionTables,
  PostgresCheckpointStore,
  PostgresDeadLetterStore,
  projectionDeadLettersDdl,
  PostgresProjectionLock,
  PostgresProjectionRunner,
  PostgresProjectionTarget,
  postgresWakeUps,
  projectionCheckpointsDdl,
  projectionErrorsDdl,
  type PostgresProjectionContext,
  type PostgresProjectionRunnerOptions,
} from './projections.js';
export { PostgresInbox, type PostgresInboxOptions } from './inbox.js';
export { PostgresCatalog } from './catalog.js';
// Crypto-shredding keys and stream pruning on PostgreSQL.
export { PostgresKeyStore, type PostgresKeyStoreOptions } from './key-store.js';
export { PostgresStreamPruning } from './lifecycle.js';
