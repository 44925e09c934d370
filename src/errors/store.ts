import { EventfoldError } from './base.js';

/** The store was closed: later calls fail with this. Not transient. */
export class StoreClosedError extends EventfoldError {
  readonly code = 'STORE_CLOSED' as const;

  constructor(what = 'event store') {
    super(`The ${what} is closed. Create a new instance to keep working.`);
  }
}

/**
 * The store's engine cannot do what was asked (see `EventStoreCapabilities`). Nothing was written.
 * Not transient: retrying the same call fails the same way.
 */
export class CapabilityNotSupportedError extends EventfoldError {
  readonly code = 'CAPABILITY_NOT_SUPPORTED' as const;

  constructor(
    readonly capability: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Base of the errors a store's database or file reports (connection, timeout, disk, schema). The
 * driver's error is the `cause`; `driverCode` is its code (`'55P03'`, `'SQLITE_BUSY'`,
 * `'ECONNRESET'`), for logs. Adapters throw the subclasses below, never the driver's error.
 */
export abstract class StoreError extends EventfoldError {
  readonly driverCode: string | undefined;

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    const code = (options?.cause as { code?: unknown } | null | undefined)?.code;
    this.driverCode = typeof code === 'string' || typeof code === 'number' ? String(code) : undefined;
  }
}

/**
 * The storage backend could not be reached, dropped the connection mid-operation, or ran out of
 * connections or memory. Transient. A write interrupted this way was rolled back, unless the
 * connection dropped during the commit itself: then it may have been stored, so retry writes with
 * an exact `expectedVersion` (a duplicate then fails as a conflict instead of being written twice).
 */
export class StoreUnavailableError extends StoreError {
  readonly code = 'STORE_UNAVAILABLE' as const;
  override readonly transient = true;
}

/**
 * A wait exceeded a limit: a lock wait (PostgreSQL `lock_timeout`, SQLite's `busyTimeout` while
 * another connection or process holds the write lock), a statement (`statement_timeout`) or a
 * cancelled statement: nothing was written. Or PostgreSQL did not answer within the client's
 * `query_timeout`: the statement may still be running and commit, so retry a write with an exact
 * `expectedVersion` (a duplicate then fails as a conflict). Transient: retry with backoff.
 */
export class StoreTimeoutError extends StoreError {
  readonly code = 'STORE_TIMEOUT' as const;
  override readonly transient = true;
}

/**
 * The database aborted the transaction to keep concurrent transactions consistent (PostgreSQL
 * serialization failure or deadlock, SQLite `SQLITE_LOCKED` or a stale WAL snapshot). Nothing was
 * written. Transient: run the whole transaction again.
 */
export class TransactionConflictError extends StoreError {
  readonly code = 'TRANSACTION_CONFLICT' as const;
  override readonly transient = true;
}

/**
 * The disk (or the database's size limit) is full. Nothing was written. Transient: it clears once
 * space is freed, so retry with backoff, and alert an operator.
 */
export class StorageFullError extends StoreError {
  readonly code = 'STORAGE_FULL' as const;
  override readonly transient = true;
}

/**
 * The database accepts no writes: a read-only connection or file, a read-only transaction or
 * server setting, a hot standby. Nothing was written. Point the store at a writable database.
 */
export class StoreReadOnlyError extends StoreError {
  readonly code = 'STORE_READ_ONLY' as const;
}

/** The database reports damaged data (or the file is not a database). Restore from a backup. */
export class StoreCorruptError extends StoreError {
  readonly code = 'STORE_CORRUPT' as const;
}

/**
 * The store's tables or functions are missing or outdated: `migrate()` has not been run on this
 * database/schema. Not transient (retrying spins for ever): run `migrate()` once, then retry.
 */
export class SchemaNotMigratedError extends StoreError {
  readonly code = 'SCHEMA_NOT_MIGRATED' as const;
}

/**
 * The database was migrated by a newer eventfold whose schema this version does not know. Nothing
 * was changed. Not transient: upgrade eventfold (never migrate down).
 */
export class UnsupportedSchemaVersionError extends EventfoldError {
  readonly code = 'SCHEMA_VERSION_UNSUPPORTED' as const;

  /** `location` names the database: a SQLite file, or a PostgreSQL schema. */
  constructor(
    readonly component: string,
    readonly foundVersion: number,
    readonly supportedVersion: number,
    readonly location: string,
  ) {
    super(
      `${location} holds eventfold ${component} schema version ${foundVersion}, but this eventfold supports ` +
        `up to version ${supportedVersion}. It was written by a newer eventfold; upgrade eventfold to use it. ` +
        `Nothing was changed.`,
    );
  }
}

/**
 * The database rejected a call for a reason none of the other store errors names (a permission, a
 * constraint of your own tables in an append hook, …). The driver's error is the `cause`. Not
 * transient.
 */
export class StoreFailureError extends StoreError {
  readonly code = 'STORE_FAILURE' as const;
}
