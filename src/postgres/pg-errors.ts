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

/** SQLSTATE `append_events` raises when an expected version does not match. */
export const CONFLICT_SQLSTATE = 'EF001';

/** Errors `pg` raises itself (not the server) when a connection is gone or cannot be made. */
const CONNECTION_MESSAGES = [
  'Connection terminated',
  'connection error',
  'not queryable',
  'timeout exceeded when trying to connect',
  'Client was closed',
  'Connection ended',
];

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ECONNABORTED',
]);

/** pg's message when a query got no answer within `query_timeout` (client side). */
const QUERY_TIMEOUT_MESSAGE = 'Query read timeout';

/**
 * True when `pg` gave up waiting for a query's answer (`query_timeout`): the server may be gone
 * without a reset (a blackholed connection), or still running the statement. Either way the
 * connection is of no further use.
 */
export function isQueryTimeout(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    if (e.message === QUERY_TIMEOUT_MESSAGE) return true;
  }
  return false;
}

/** pg's message when a pool the caller owns was ended and then used. */
const POOL_ENDED_MESSAGE = 'Cannot use a pool after calling end on the pool';

function codeOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** A server error: `pg` gives it a five-character SQLSTATE `code` and a `severity`. */
function isServerError(error: Error): boolean {
  const code = codeOf(error);
  return code !== undefined && code.length === 5 && typeof (error as { severity?: unknown }).severity === 'string';
}

/** True when the error means the server could not be reached or dropped the connection. */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = codeOf(error);
  if (code !== undefined) {
    if (NETWORK_CODES.has(code)) return true;
    // Class 08: connection exception. 57P01-05: the server shut down, terminated the backend,
    // cannot accept connections yet, or closed an idle session. 25P03: idle in transaction too long.
    if (code.startsWith('08') || /^57P0[1-5]$/.test(code) || code === '25P03') return true;
  }
  // A pg.Client (not pooled) whose connect ran past connectionTimeoutMillis: its socket is
  // destroyed with this bare message.
  if (error.message === 'timeout expired') return true;
  return CONNECTION_MESSAGES.some((text) => error.message.includes(text));
}

/**
 * True when the schema's tables or functions are missing: `migrate()` has not been run. Only
 * when the message names the store's schema, so a missing table of your own (in an append hook,
 * say) is reported as what it is.
 */
export function isNotMigratedError(error: unknown, schema?: string): boolean {
  const code = codeOf(error);
  // undefined_table, undefined_function, invalid_schema_name
  if (code !== '42P01' && code !== '42883' && code !== '3F000') return false;
  if (schema === undefined) return true;
  const message = error instanceof Error ? error.message : '';
  return message.includes(`"${schema}"`) || message.includes(`"${schema}.`) || message.includes(` ${schema}.`);
}

/**
 * Maps driver failures to typed eventfold errors with the driver's error as `cause`:
 *
 * | driver error | eventfold error |
 * |---|---|
 * | network errors, class 08, 57P01-05, 25P03, class 53 but 53100, 58*, 40003 | `StoreUnavailableError` |
 * | 55P03 lock_not_available (`lock_timeout`), 57014 query_canceled (`statement_timeout`), no answer within `query_timeout` | `StoreTimeoutError` |
 * | 40001 serialization_failure, 40P01 deadlock_detected | `TransactionConflictError` |
 * | 53100 disk_full | `StorageFullError` |
 * | 25006 read_only_sql_transaction | `StoreReadOnlyError` |
 * | XX001 data_corrupted, XX002 index_corrupted | `StoreCorruptError` |
 * | 42P01 / 42883 / 3F000 naming the store's schema | `SchemaNotMigratedError` |
 * | any other server error | `StoreFailureError` |
 *
 * eventfold's own errors, errors your hooks throw and the store's conflict signal (EF001) pass
 * through unchanged. Without a `schema`, any missing table, function or schema counts as "not migrated". `write` adds what a writer needs to know: an interrupted transaction is rolled
 * back by the server, except when the connection dropped during the commit itself, whose outcome
 * the client cannot know.
 */
export function translatePgError(error: unknown, action: string, schema: string | undefined, write = false): unknown {
  if (!(error instanceof Error) || isEventfoldError(error)) return error;
  const code = codeOf(error);
  if (code === CONFLICT_SQLSTATE) return error;
  const cause = { cause: error };
  const what = `PostgreSQL failed to ${action}`;
  const driver = `${error.message}${code === undefined ? '' : ` [${code}]`}`;
  if (error.message === QUERY_TIMEOUT_MESSAGE) {
    const advice = write
      ? 'Nothing was committed unless the commit itself was under way: check the stream version before retrying.'
      : 'The connection was dropped (the pool opens a new one); retry once the server answers.';
    return new StoreTimeoutError(
      `PostgreSQL did not answer within query_timeout while trying to ${action} (a dead or blackholed connection, or a slow statement). ${advice}`,
      cause,
    );
  }
  if (isConnectionError(error)) {
    const advice = write
      ? 'Nothing was half-written: the server rolls back an interrupted transaction. If the connection ' +
        'dropped while committing, the write may have been stored, so check the stream version before retrying.'
      : 'The pool replaces broken connections; retry once the server is reachable.';
    return new StoreUnavailableError(
      `PostgreSQL connection lost or unreachable while trying to ${action} (${driver}). ${advice}`,
      cause,
    );
  }
  if (error.message.includes(POOL_ENDED_MESSAGE)) {
    return new StoreClosedError('PostgreSQL pool passed to the store (it was ended)');
  }
  if (isNotMigratedError(error, schema)) {
    return new SchemaNotMigratedError(
      `The eventfold tables in PostgreSQL schema '${schema ?? '?'}' are missing or outdated (${driver}). ` +
        `Run migrate() once (or create the store with PostgresEventStore.create) before using the store.`,
      cause,
    );
  }
  if (code === undefined || !isServerError(error)) return error;
  const nothing = write ? ' Nothing was written.' : '';
  switch (code) {
    case '55P03':
      return new StoreTimeoutError(
        `${what}: a lock was not granted within lock_timeout (${driver}).${nothing} Another transaction holds it; retry later.`,
        cause,
      );
    case '57014':
      return new StoreTimeoutError(
        `${what}: the statement was cancelled (${driver}), by statement_timeout or on request.${nothing} Retry later.`,
        cause,
      );
    case '40001':
    case '40P01':
      return new TransactionConflictError(
        `${what}: the server aborted the transaction because of a concurrent one (${driver}).${nothing} Run it again.`,
        cause,
      );
    case '40003':
      return new StoreUnavailableError(
        `${what}: the server could not tell whether the statement completed (${driver}). Check the stream version before retrying.`,
        cause,
      );
    case '53100':
      return new StorageFullError(
        `${what}: the database server's disk is full (${driver}).${nothing} Free space on the server, then retry.`,
        cause,
      );
    case '25006':
      return new StoreReadOnlyError(
        `${what}: the database is read-only here (${driver}): a read-only transaction or ` +
          `default_transaction_read_only, or a standby server.${nothing} Connect to a writable primary.`,
        cause,
      );
    case 'XX001':
    case 'XX002':
      return new StoreCorruptError(`${what}: the server reports corrupted data (${driver}). Restore from a backup.`, cause);
    default:
      break;
  }
  // Class 53 (insufficient resources: memory, connections) and 58 (system / I/O errors) pass.
  if (code.startsWith('53') || code.startsWith('58')) {
    return new StoreUnavailableError(`${what}: the server is short of resources or failed an I/O (${driver}). Retry later.`, cause);
  }
  return new StoreFailureError(`${what} (${driver}).`, cause);
}
