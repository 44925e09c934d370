import { InvalidArgumentError } from './errors.js';

/**
 * Capped exponential backoff with jitter. Jitter matters: writers that collided once and wait the
 * same time collide again; a random share of the delay spreads them out.
 */
export interface BackoffPolicy {
  /** Delay after the first failure, before jitter. */
  readonly initialDelayMs: number;
  /** Upper bound of any delay. */
  readonly maxDelayMs: number;
  /** Growth of the delay per failure (>= 1). */
  readonly factor: number;
  /**
   * Share of the delay that is random, 0..1. 1 ("full jitter") waits uniformly between 0 and the
   * capped delay; 0 waits exactly the capped delay.
   */
  readonly jitter: number;
}

export function resolveBackoffPolicy(defaults: BackoffPolicy, overrides: Partial<BackoffPolicy> | undefined, label: string): BackoffPolicy {
  const policy = { ...defaults, ...overrides };
  for (const key of ['initialDelayMs', 'maxDelayMs'] as const) {
    if (typeof policy[key] !== 'number' || !Number.isFinite(policy[key]) || policy[key] < 0) {
      throw new InvalidArgumentError(`${label}.${key} must be a number >= 0, got ${String(policy[key])}.`);
    }
  }
  if (typeof policy.factor !== 'number' || !Number.isFinite(policy.factor) || policy.factor < 1) {
    throw new InvalidArgumentError(`${label}.factor must be a number >= 1, got ${String(policy.factor)}.`);
  }
  if (typeof policy.jitter !== 'number' || !(policy.jitter >= 0 && policy.jitter <= 1)) {
    throw new InvalidArgumentError(`${label}.jitter must be a number from 0 to 1, got ${String(policy.jitter)}.`);
  }
  return Object.freeze(policy);
}

/** The delay after the `failures`-th failure (1-based). `random` returns a number in [0, 1). */
export function backoffDelayMs(policy: BackoffPolicy, failures: number, random: () => number = Math.random): number {
  const capped = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** Math.max(0, failures - 1));
  return capped * (1 - policy.jitter) + capped * policy.jitter * random();
}

export function sleep(ms: number): Promise<void> {
  return ms <= 0 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, ms));
}
