import type { MaybePromise } from './maybe-promise.js';

/** Keeps one consumer per name. `tryAcquire` tries once and returns undefined when another holds it. */
export interface ConsumerLock {
  tryAcquire(name: string, owner: string): Promise<ConsumerLease | undefined>;
}

export interface ConsumerLease {
  /** Called at most once, when the lock is lost while held (connection dropped, heartbeat failed). */
  onLost(listener: (reason: string, cause?: unknown) => void): void;
  release(): Promise<void>;
}

/**
 * Tells a consumer that new input may be there (an in-process append listener, PostgreSQL NOTIFY).
 * Returns an unsubscribe function. A source whose connection breaks calls `onBroken`; the consumer
 * then closes it and opens it again with backoff. Consumers poll as well, so missed wake-ups only
 * add latency.
 */
export type WakeUpSource = (
  listener: () => void,
  onBroken: (error: unknown) => void,
) => MaybePromise<() => MaybePromise<void>>;
