import Database from 'better-sqlite3';

/**
 * How the SQLite adapter judges a driver error for retrying consumers: another connection's lock
 * (`SQLITE_BUSY`, `SQLITE_LOCKED`), an I/O error and a full disk pass; everything else (a
 * constraint, a syntax error, a read-only or corrupt file) does not. Eventfold errors are left to
 * their codes.
 */
export function classifySqliteError(error: unknown): boolean | undefined {
  if (!(error instanceof Database.SqliteError)) return undefined;
  const code = error.code;
  return (
    code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED') || code.startsWith('SQLITE_IOERR') || code === 'SQLITE_FULL'
  );
}
