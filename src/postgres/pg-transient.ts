import { isEventfoldError } from '../errors.js';
import { isConnectionError, isNotMigratedError } from './pg-errors.js';

/**
 * SQLSTATEs a retry gets past: insufficient resources (53: too many connections, out of memory,
 * disk full), serialization failures and deadlocks (40001, 40P01), lock and statement timeouts
 * (55P03, 57014), an idle-in-transaction timeout (25P03), and the server shutting down or not yet
 * accepting connections (57P01–57P03, class 08).
 */
const TRANSIENT_SQLSTATES = new Set(['40001', '40P01', '55P03', '57014', '25P03', '57P01', '57P02', '57P03']);

/**
 * How the PostgreSQL adapter judges a driver error for retrying consumers: a dropped or refused
 * connection and the SQLSTATEs above are transient; a missing schema (42P01, 42883, 3F000) and
 * every other SQLSTATE (syntax, constraint, data errors) are permanent. Eventfold errors are left
 * to their codes (undefined), so is anything that is not a driver error.
 */
export function classifyPgError(error: unknown): boolean | undefined {
  if (!(error instanceof Error) || isEventfoldError(error)) return undefined;
  if (isNotMigratedError(error)) return false;
  if (isConnectionError(error)) return true;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return undefined;
  if (TRANSIENT_SQLSTATES.has(code) || code.startsWith('08') || code.startsWith('53')) return true;
  return false;
}
