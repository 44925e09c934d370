import { backoffDelayMs, resolveBackoffPolicy, type BackoffPolicy } from '../backoff.js';
import { InvalidArgumentError } from '../errors.js';

/**
 * How a consumer retries: capped exponential backoff with jitter.
 * `maxAttempts` bounds the attempts at one poison input (a handler that keeps throwing); transient
 * faults (the database unreachable, a dropped connection, a busy lock) are retried without limit,
 * with the same backoff, until the consumer is stopped.
 */
export interface RetryPolicy extends BackoffPolicy {
  /** Attempts per event before the poison-event policy applies. Default 5; `Infinity` retries for ever. */
  readonly maxAttempts: number;
  /** Delay before the second attempt. Default 100 ms. */
  readonly initialDelayMs: number;
  /** Upper bound of the delay. Default 5,000 ms. */
  readonly maxDelayMs: number;
  /** Growth of the delay per attempt. Default 2. */
  readonly factor: number;
  /**
   * Share of each delay that is random, 0–1 (default 0.5: a delay of d waits between d/2 and d), so
   * many consumers that failed together do not all retry at the same instant.
   */
  readonly jitter: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 5,
  initialDelayMs: 100,
  maxDelayMs: 5_000,
  factor: 2,
  jitter: 0.5,
});

export function resolveRetryPolicy(overrides: Partial<RetryPolicy> | undefined): RetryPolicy {
  const maxAttempts = overrides?.maxAttempts ?? DEFAULT_RETRY_POLICY.maxAttempts;
  const attemptsOk = maxAttempts === Number.POSITIVE_INFINITY || (Number.isSafeInteger(maxAttempts) && maxAttempts >= 1);
  if (!attemptsOk) {
    throw new InvalidArgumentError(`retry.maxAttempts must be an integer >= 1 or Infinity, got ${String(maxAttempts)}.`);
  }
  // The backoff half is the library's one backoff (also used by the repository's retries).
  return Object.freeze({ ...resolveBackoffPolicy(DEFAULT_RETRY_POLICY, overrides, 'retry'), maxAttempts });
}

/**
 * Delay after the `attempt`-th failure (1-based): `initialDelayMs · factor^(attempt-1)`, capped at
 * `maxDelayMs`, of which the `jitter` share is random. Never above the cap, never negative or NaN,
 * however long an outage lasts.
 */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  // 0 · factor^n is NaN once factor^n overflows; a long outage must not turn the delay into 0 ms.
  if (policy.initialDelayMs === 0) return 0;
  const r = Math.min(1, Math.max(0, random()));
  return backoffDelayMs(policy, Math.min(Math.max(1, attempt), 1_000), () => r);
}

/** What `onError` learns about each failed attempt. */
export interface ConsumerErrorInfo {
  /** Failed attempts in a row so far (of this event, or of reaching the database). */
  readonly attempt: number;
  readonly willRetry: boolean;
  /** Delay before the next attempt, when `willRetry`. */
  readonly delayMs: number;
  /** True for infrastructure faults, retried without limit; false for a handler's failure. */
  readonly transient: boolean;
}
