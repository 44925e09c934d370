import { InvalidArgumentError } from '../errors.js';

/** How a runner retries a failing batch before it stops: exponential backoff, bounded attempts. */
export interface RetryPolicy {
  /** Attempts per event (or batch) before the runner stops with an error. Default 5. */
  readonly maxAttempts: number;
  /** Delay before the second attempt. Default 100 ms. */
  readonly initialDelayMs: number;
  /** Upper bound of the delay. Default 5,000 ms. */
  readonly maxDelayMs: number;
  /** Growth of the delay per attempt. Default 2. */
  readonly factor: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 5,
  initialDelayMs: 100,
  maxDelayMs: 5_000,
  factor: 2,
});

export function resolveRetryPolicy(overrides: Partial<RetryPolicy> | undefined): RetryPolicy {
  const policy = { ...DEFAULT_RETRY_POLICY, ...overrides };
  if (!Number.isSafeInteger(policy.maxAttempts) || policy.maxAttempts < 1) {
    throw new InvalidArgumentError(`retry.maxAttempts must be an integer >= 1, got ${String(policy.maxAttempts)}.`);
  }
  for (const key of ['initialDelayMs', 'maxDelayMs'] as const) {
    if (typeof policy[key] !== 'number' || !Number.isFinite(policy[key]) || policy[key] < 0) {
      throw new InvalidArgumentError(`retry.${key} must be a number >= 0, got ${String(policy[key])}.`);
    }
  }
  if (typeof policy.factor !== 'number' || !Number.isFinite(policy.factor) || policy.factor < 1) {
    throw new InvalidArgumentError(`retry.factor must be a number >= 1, got ${String(policy.factor)}.`);
  }
  return Object.freeze(policy);
}

/** Delay after the `attempt`-th failure (1-based). */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** Math.max(0, attempt - 1));
}
