import Database from 'better-sqlite3';
import {
  isEventfoldError,
  SchemaNotMigratedError,
  StorageFullError,
  StoreClosedError,
  StoreCorruptError,
  StoreFailureError,
  StoreReadOnlyError,
  StoreTimeoutError,
  StoreUnavailableError,
  TransactionConflictError,
} from '../errors.js';

/** better-sqlite3's message when a statement runs on a closed connection (it throws a TypeError). */
const CLOSED_MESSAGE = 'The database connection is not open';

/** An error SQLite reported, from this or another copy of better-sqlite3. */
function sqliteCode(error: Error): string | undefined {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return undefined;
  return error instanceof Database.SqliteError || error.name === 'SqliteError' ? code : undefined;
}

/** `code` is `family` or one of its extended codes (`SQLITE_BUSY` covers `SQLITE_BUSY_RECOVERY`). */
function isIn(code: string, family: string): boolean {
  return code === family || code.startsWith(`${family}_`);
}

/**
 * Maps SQLite failures to typed eventfold errors with the driver's error as `cause`:
 *
 * | SQLite result code | eventfold error |
 * |---|---|
 * | `SQLITE_BUSY` (another connection or process held the lock past `busyTimeout`) | `StoreTimeoutError` |
 * | `SQLITE_BUSY_SNAPSHOT`, `SQLITE_LOCKED` | `TransactionConflictError` |
 * | `SQLITE_FULL` (disk full, or `max_page_count` reached) | `StorageFullError` |
 * | `SQLITE_READONLY` (read-only connection or file) | `StoreReadOnlyError` |
 * | `SQLITE_CORRUPT`, `SQLITE_NOTADB` | `StoreCorruptError` |
 * | `SQLITE_IOERR`, `SQLITE_CANTOPEN`, `SQLITE_NOMEM`, `SQLITE_PROTOCOL`, `SQLITE_INTERRUPT` | `StoreUnavailableError` |
 * | "no such table: eventfold_…" | `SchemaNotMigratedError` |
 * | any other SQLite error | `StoreFailureError` |
 *
 * eventfold's own errors, errors your hooks throw and bugs pass through unchanged. A statement on
 * a closed connection becomes `StoreClosedError`.
 */
export function translateSqliteError(error: unknown, what: string): unknown {
  if (!(error instanceof Error) || isEventfoldError(error)) return error;
  const code = sqliteCode(error);
  if (code === undefined) {
    return error instanceof TypeError && error.message.includes(CLOSED_MESSAGE)
      ? new StoreClosedError(`${what}'s SQLite connection`)
      : error;
  }
  const cause = { cause: error };
  const driver = `${error.message} [${code}]`;
  if (isIn(code, 'SQLITE_BUSY') && code !== 'SQLITE_BUSY_SNAPSHOT') {
    return new StoreTimeoutError(
      `${what}: the SQLite database stayed locked by another connection or process for longer than ` +
        `busyTimeout (${driver}). Nothing was written. Retry later, or raise busyTimeout.`,
      cause,
    );
  }
  if (code === 'SQLITE_BUSY_SNAPSHOT' || isIn(code, 'SQLITE_LOCKED')) {
    return new TransactionConflictError(
      `${what}: SQLite aborted the transaction because of a conflicting one (${driver}). Nothing was written. Run it again.`,
      cause,
    );
  }
  if (isIn(code, 'SQLITE_FULL')) {
    return new StorageFullError(
      `${what}: the SQLite database is full (${driver}): the disk, or the max_page_count limit. ` +
        `Nothing was written. Free space (or raise the limit), then retry.`,
      cause,
    );
  }
  if (isIn(code, 'SQLITE_READONLY')) {
    return new StoreReadOnlyError(
      `${what}: the SQLite database is read-only (${driver}): opened read-only, or the file or its ` +
        `directory is not writable. Nothing was written. Open it writable to append.`,
      cause,
    );
  }
  if (isIn(code, 'SQLITE_CORRUPT') || isIn(code, 'SQLITE_NOTADB')) {
    return new StoreCorruptError(
      `${what}: the SQLite file is damaged or not a database (${driver}). Restore it from a backup.`,
      cause,
    );
  }
  if (
    isIn(code, 'SQLITE_IOERR') ||
    isIn(code, 'SQLITE_CANTOPEN') ||
    code === 'SQLITE_NOMEM' ||
    code === 'SQLITE_PROTOCOL' ||
    code === 'SQLITE_INTERRUPT'
  ) {
    return new StoreUnavailableError(
      `${what}: SQLite could not read or write its files (${driver}). The transaction was rolled back; retry later.`,
      cause,
    );
  }
  if (code === 'SQLITE_ERROR' && /no such table: (main\.)?eventfold_/.test(error.message)) {
    return new SchemaNotMigratedError(
      `${what}: eventfold's tables are missing from the SQLite database (${driver}); they were dropped after ` +
        `the store opened it. Open the store again: it creates (migrates) them on open.`,
      cause,
    );
  }
  return new StoreFailureError(`${what}: SQLite failed (${driver}).`, cause);
}
