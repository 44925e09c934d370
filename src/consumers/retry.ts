import { InvalidArgumentError } from '../errors.js';

/**
 * How a consumer retries: capped exponential backoff with jitter.
 * `maxAttempts` bounds the attempts at one poison input (a handler that keeps throwing); transient
 * faults (the database unreachable, a dropped connection, a busy lock) are retried without limit,
 * with the same backoff, until the consumer is stopped.
 */
export interface RetryPolicy {
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
  const policy = { ...DEFAULT_RETRY_POLICY, ...overrides };
  const attemptsOk =
    policy.maxAttempts === Number.POSITIVE_INFINITY || (Number.isSafeInteger(policy.maxAttempts) && policy.maxAttempts >= 1);
  if (!attemptsOk) {
    throw new InvalidArgumentError(`retry.maxAttempts must be an integer >= 1 or Infinity, got ${String(policy.maxAttempts)}.`);
  }
  for (const key of ['initialDelayMs', 'maxDelayMs'] as const) {
    if (typeof policy[key] !== 'number' || !Number.isFinite(policy[key]) || policy[key] < 0) {
      throw new InvalidArgumentError(`retry.${key} must be a number >= 0, got ${String(policy[key])}.`);
    }
  }
  if (typeof policy.factor !== 'number' || !Number.isFinite(policy.factor) || policy.factor < 1) {
    throw new InvalidArgumentError(`retry.factor must be a number >= 1, got ${String(policy.factor)}.`);
  }
  if (typeof policy.jitter !== 'number' || !(policy.jitter >= 0 && policy.jitter <= 1)) {
    throw new InvalidArgumentError(`retry.jitter must be a number between 0 and 1, got ${String(policy.jitter)}.`);
  }
  return Object.freeze(policy);
}

/**
 * Delay after the `attempt`-th failure (1-based): `initialDelayMs · factor^(attempt-1)`, capped at
 * `maxDelayMs`, of which the `jitter` share is random. Never above the cap, never negative.
 */
export function backoffDelay(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const exponent = Math.min(Math.max(0, attempt - 1), 1_000);
  const capped = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** exponent);
  const r = Math.min(1, Math.max(0, random()));
  return capped * (1 - policy.jitter) + capped * policy.jitter * r;
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
