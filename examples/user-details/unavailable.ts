import { isEventfoldError } from 'eventfold';

/**
 * Is this failure "the store cannot be reached right now" (retry later, HTTP 503) rather than a bug
 * (500)? Decided by stable codes only, never by message text or class: the library's own codes,
 * Node's socket codes and PostgreSQL's SQLSTATEs, also when wrapped as an error's `cause`.
 */

/**
 * eventfold: the store is unreachable, timed out or aborted a transaction to stay consistent (all
 * transient: the library marks them `transient`), or is closed because this process is shutting down.
 */
const LIBRARY_CODES = new Set(['STORE_UNAVAILABLE', 'STORE_TIMEOUT', 'TRANSACTION_CONFLICT', 'STORE_CLOSED']);

/** Node's socket and DNS errors on the way to a database server. */
const NODE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * PostgreSQL SQLSTATEs meaning the server (not the query) failed: 57P01 admin shutdown (a
 * terminated backend), 57P02 crash shutdown, 57P03 cannot connect now, 53300 too many
 * connections, 57014 query cancelled (statement timeout), 55P03 lock not available (lock timeout).
 * Class 08 (connection exception) is matched by prefix.
 */
const SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '57014', '55P03']);

/** SQLite: the file is locked by another writer longer than the busy timeout. */
const SQLITE_CODES = new Set(['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_BUSY_TIMEOUT', 'SQLITE_LOCKED']);

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function isUnavailableCode(code: string): boolean {
  return (
    LIBRARY_CODES.has(code) ||
    NODE_CODES.has(code) ||
    SQLSTATES.has(code) ||
    SQLITE_CODES.has(code) ||
    /^08[0-9A-Z]{3}$/.test(code)
  );
}

/** True when `error` (or an error in its `cause` chain) says the store is unavailable. */
export function isStoreUnavailable(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const code = codeOf(current);
    if (code !== undefined && isUnavailableCode(code)) return true;
    if (isEventfoldError(current) && current.transient) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}
