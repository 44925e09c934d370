import Database from 'better-sqlite3';
import { isEventfoldError } from '../errors.js';
import { translateSqliteError } from './sqlite-errors.js';

/**
 * How the SQLite adapter judges a driver error for retrying consumers: exactly as the typed error
 * the stores turn it into (see `translateSqliteError`) — another connection's lock (`SQLITE_BUSY`,
 * `SQLITE_LOCKED`), an I/O error and a full disk are transient; a constraint, a syntax error, a
 * read-only or corrupt file are not. Eventfold errors are left to their own flag (undefined).
 */
export function classifySqliteError(error: unknown): boolean | undefined {
  if (!(error instanceof Database.SqliteError)) return undefined;
  const translated = translateSqliteError(error, 'SQLite');
  return isEventfoldError(translated) ? translated.transient : undefined;
}
