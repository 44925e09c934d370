import type { WakeUpSource } from './lock.js';
import type { MaybePromise } from './maybe-promise.js';
import { backoffDelay, type ConsumerErrorInfo, type RetryPolicy } from './retry.js';

interface WakeUpChannelHooks {
  readonly wake: () => void;
  readonly retry: RetryPolicy;
  readonly report: (error: Error, info: ConsumerErrorInfo) => void;
}

/**
 * Keeps a wake-up source open: when opening fails or the source reports its connection broken,
 * the fault is reported and the source is opened again after a backoff, for as long as the
 * channel is open. After a reopen the consumer is woken once, to pick up what it missed.
 */
export class WakeUpChannel {
  private unsubscribe: (() => MaybePromise<void>) | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private failures = 0;
  private generation = 0;

  constructor(
    private readonly source: WakeUpSource,
    private readonly hooks: WakeUpChannelHooks,
  ) {}

  /** First attempt; never throws (a failure schedules the next attempt). */
  async open(): Promise<void> {
    if (this.closed) return;
    const generation = ++this.generation;
    try {
      const unsubscribe = await this.source(
        () => this.hooks.wake(),
        (error) => {
          if (generation === this.generation) this.broken(error);
        },
      );
      if (this.closed || generation !== this.generation) {
        await this.quietly(unsubscribe);
        return;
      }
      this.unsubscribe = unsubscribe;
      if (this.failures > 0) this.hooks.wake();
      this.failures = 0;
    } catch (error) {
      if (generation === this.generation) this.broken(error);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.generation++;
    clearTimeout(this.timer);
    const unsubscribe = this.unsubscribe;
    this.unsubscribe = undefined;
    if (unsubscribe !== undefined) await this.quietly(unsubscribe);
  }

  private broken(error: unknown): void {
    if (this.closed) return;
    this.generation++;
    const unsubscribe = this.unsubscribe;
    this.unsubscribe = undefined;
    if (unsubscribe !== undefined) void this.quietly(unsubscribe);
    this.failures++;
    const delayMs = backoffDelay(this.hooks.retry, this.failures);
    this.hooks.report(error instanceof Error ? error : new Error(String(error)), {
      attempt: this.failures,
      willRetry: true,
      delayMs,
      transient: true,
    });
    // Polling covers for the wake-ups meanwhile.
    this.hooks.wake();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.open(), delayMs);
    this.timer.unref?.();
  }

  private async quietly(unsubscribe: () => MaybePromise<void>): Promise<void> {
    try {
      await unsubscribe();
    } catch {
      // Closing a broken source is best effort.
    }
  }
}
