import { EventfoldError } from 'eventfold';

/** Too many password hashes are already running or waiting: try again shortly (HTTP 503). */
export class ServiceBusyError extends EventfoldError {
  readonly code = 'SERVICE_BUSY' as const;
}

export interface HashGateOptions {
  /** Hashes running at once. scrypt runs on libuv's thread pool (4 threads by default). */
  readonly maxConcurrent?: number;
  /** Hashes allowed to wait for a slot; past that, callers get `ServiceBusyError` at once. */
  readonly maxWaiting?: number;
}

/**
 * Bounds the expensive part of a command (a ~75 ms scrypt hash) so a burst of valid requests
 * queues briefly and then sheds load, instead of queueing without bound and starving the thread
 * pool that the rest of the process shares.
 */
export function createHashGate(options: HashGateOptions = {}) {
  const maxConcurrent = options.maxConcurrent ?? 4;
  const maxWaiting = options.maxWaiting ?? 64;
  let running = 0;
  const waiting: (() => void)[] = [];

  return async function gated<T>(work: () => Promise<T>): Promise<T> {
    if (running >= maxConcurrent) {
      if (waiting.length >= maxWaiting) {
        throw new ServiceBusyError(`${running} password hashes are running and ${waiting.length} are waiting.`);
      }
      await new Promise<void>((resolve) => waiting.push(resolve));
    } else {
      running += 1;
    }
    try {
      return await work();
    } finally {
      // Hand the slot straight to the next waiter, or free it.
      const next = waiting.shift();
      if (next === undefined) running -= 1;
      else next();
    }
  };
}
