import { errors as natsErrors } from '@nats-io/transport-node';
import { JetStreamApiError } from '@nats-io/jetstream';
import { StoreUnavailableError } from '../errors.js';
import type { Logger } from '../logging.js';

/** Faults that pass: no acknowledgement in time, no leader yet, a connection being re-established. */
export function isTransient(error: unknown): boolean {
  if (error instanceof natsErrors.TimeoutError) return true;
  if (error instanceof natsErrors.NoRespondersError) return true;
  if (error instanceof natsErrors.ConnectionError) return true;
  if (error instanceof natsErrors.RequestError) return true;
  // JetStreamNotEnabled (no responders to a publish: no stream leader, a node restarting) is not exported.
  if (error instanceof Error && error.name === 'JetStreamNotEnabled') return true;
  if (error instanceof JetStreamApiError) {
    // 503s: "JetStream system temporarily unavailable", no stream leader during an election.
    return error.status === 503 || error.code === 10008;
  }
  return false;
}

export function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * Runs `attempt` until it succeeds, fails for good, or `windowMs` has passed; transient faults are
 * retried with capped exponential backoff and jitter and reported to the logger.
 */
export async function retryTransient<T>(
  what: string,
  windowMs: number,
  logger: Logger,
  attempt: (try_: number) => Promise<T>,
  isClosed: () => boolean,
  closedError: () => Error,
): Promise<T> {
  const deadline = Date.now() + windowMs;
  for (let n = 0; ; n++) {
    if (isClosed()) throw closedError();
    try {
      return await attempt(n);
    } catch (error) {
      if (isClosed() || error instanceof natsErrors.ClosedConnectionError) {
        if (isClosed()) throw closedError();
        throw new StoreUnavailableError(`Could not ${what}: the NATS connection is closed.`, { cause: error });
      }
      if (!isTransient(error)) throw error;
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new StoreUnavailableError(
          `Could not ${what}: NATS JetStream did not answer within ${windowMs} ms (${describe(error)}). ` +
            `Check that the servers are up and the stream has a leader, then retry.`,
          { cause: error },
        );
      }
      const delay = Math.min(remaining, Math.min(1000, 25 * 2 ** Math.min(n, 6)) * (0.5 + Math.random() / 2));
      logger.warn(`NATS: retrying to ${what} after a transient fault`, { attempt: n + 1, delayMs: Math.round(delay), error: describe(error) });
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
