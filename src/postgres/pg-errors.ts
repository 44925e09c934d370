import { StoreUnavailableError } from '../errors.js';

/** SQLSTATE `append_events` raises when an expected version does not match. */
export const CONFLICT_SQLSTATE = 'EF001';

const CONNECTION_MESSAGES = [
  'Connection terminated',
  'connection error',
  'not queryable',
  'timeout exceeded when trying to connect',
  'Client was closed',
  'Connection ended',
];

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** True when the error means the server could not be reached or dropped the connection. */
export function isConnectionError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const code = sqlState(error);
  if (code !== undefined) {
    if (NETWORK_CODES.has(code)) return true;
    // Class 08: connection exception; 57P01-03: the server shut down or terminated the backend.
    if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return true;
  }
  return CONNECTION_MESSAGES.some((text) => error.message.includes(text));
}

/** True when the schema's tables or functions are missing: `migrate()` has not been run. */
export function isNotMigratedError(error: unknown): boolean {
  const code = sqlState(error);
  // undefined_table, undefined_function, invalid_schema_name
  return code === '42P01' || code === '42883' || code === '3F000';
}

/**
 * Maps driver failures to eventfold errors; other errors pass through unchanged. `write` adds
 * what a writer needs to know: an interrupted transaction is rolled back by the server, except
 * when the connection dropped during the commit itself, whose outcome the client cannot know.
 */
export function translatePgError(error: unknown, action: string, schema: string, write = false): unknown {
  if (isConnectionError(error)) {
    const advice = write
      ? 'Nothing was half-written: the server rolls back an interrupted transaction. If the connection ' +
        'dropped while committing, the write may have been stored, so check the stream version before retrying.'
      : 'The pool replaces broken connections; retry once the server is reachable.';
    return new StoreUnavailableError(
      `PostgreSQL connection lost or unreachable while trying to ${action} (${(error as Error).message}). ${advice}`,
      { cause: error },
    );
  }
  if (isNotMigratedError(error)) {
    return new StoreUnavailableError(
      `The eventfold tables in PostgreSQL schema '${schema}' are missing or outdated ` +
        `(${(error as Error).message}). Run migrate() once before using the store.`,
      { cause: error },
    );
  }
  return error;
}
