import { isEventfoldError } from '../errors.js';
import { translatePgError } from './pg-errors.js';

/**
 * How the PostgreSQL adapter judges a driver error for retrying consumers: exactly as the typed
 * error the stores turn it into (see `translatePgError`) — a dropped or refused connection, lock
 * and statement timeouts, serialization failures and deadlocks, insufficient resources (class 53,
 * a full disk included) are transient; a missing schema, a read-only server and every other
 * SQLSTATE (syntax, constraint, data errors) are not. Eventfold errors are left to their own flag,
 * and so is anything that is not a driver error (undefined).
 */
export function classifyPgError(error: unknown): boolean | undefined {
  if (!(error instanceof Error) || isEventfoldError(error)) return undefined;
  const translated = translatePgError(error, 'run a query', undefined);
  return translated !== error && isEventfoldError(translated) ? translated.transient : undefined;
}
