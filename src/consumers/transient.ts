import { isEventfoldError } from '../errors.js';

/**
 * An adapter's opinion on a raw driver error: `true` transient (retry), `false` permanent (stop),
 * `undefined` no opinion. PostgreSQL and SQLite runners pass theirs to the consumer loop.
 */
export type TransientErrorClassifier = (error: unknown) => boolean | undefined;

/** Codes of eventfold errors that retrying the same call cannot fix. */
const PERMANENT_CODES = new Set([
  'INVALID_ARGUMENT',
  'INVALID_EVENT',
  'INVALID_STREAM_ID',
  'STORE_CLOSED',
  'CAPABILITY_NOT_SUPPORTED',
  'BATCH_TOO_LARGE',
  'UNSUPPORTED_SCHEMA_VERSION',
  'SCHEMA_VERSION_UNSUPPORTED',
  'PROJECTION_HANDLER_FAILED',
  'SCHEMA_NOT_MIGRATED',
  'SCHEMA_TOO_NEW',
  'MESSAGE_REFUSED',
]);

/** Codes of eventfold errors that mean "try again later". */
const TRANSIENT_CODES = new Set(['STORE_UNAVAILABLE', 'STORE_BUSY', 'CONNECTION_LOST', 'STORE_TIMEOUT', 'BROKER_UNAVAILABLE']);

function codeOf(error: unknown): string | undefined {
  return isEventfoldError(error) ? error.code : undefined;
}

/**
 * True when `error` is a passing fault of the infrastructure — the database unreachable, a dropped
 * connection, a lock held too long — that the same call will get past once the fault clears. A
 * handler's bug, bad input, a missing schema or a closed store are not transient.
 *
 * Follows the `cause` chain: an eventfold error that wraps a driver error (or a handler error whose
 * cause is a dropped connection) is judged by the innermost opinion that `classify` (the adapter)
 * or the eventfold codes give. `StoreUnavailableError` is transient unless its cause says otherwise
 * (a missing table is reported as unavailable but no retry creates it).
 */
export function isTransientError(error: unknown, classify?: TransientErrorClassifier): boolean {
  const chain: unknown[] = [];
  let current: unknown = error;
  while (current !== undefined && current !== null && chain.length < 10 && !chain.includes(current)) {
    chain.push(current);
    current = (current as { cause?: unknown }).cause;
  }
  // Innermost first: the driver's own error knows best what happened.
  for (let i = chain.length - 1; i >= 0; i--) {
    const link = chain[i];
    const verdict = classify?.(link);
    if (verdict !== undefined) return verdict;
    const code = codeOf(link);
    if (code === undefined) continue;
    if (PERMANENT_CODES.has(code)) return false;
    if (TRANSIENT_CODES.has(code)) return true;
  }
  return false;
}
