import { ProjectionStoppedError, ProjectionTimeoutError } from './errors.js';

interface Waiter {
  readonly head: number;
  readonly rebuild: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/** Where the runner is, as far as `waitUntilCaughtUp` / `rebuild` callers care. */
export interface CatchUpProgress {
  readonly position: number;
  readonly rebuildsDone: number;
  /** A rebuild is pending or running, or the checkpoint has an older projection version. */
  readonly blocked: boolean;
}

/** Callers waiting for the checkpoint to reach a head position (and a rebuild generation). */
export class CatchUpWaiters {
  private waiters: Waiter[] = [];

  constructor(private readonly projection: string) {}

  /** `timeoutMs` counts from `startedAt` (a `performance.now()` reading), so time spent reading the head counts too. */
  add(
    head: number,
    rebuild: number,
    timeoutMs: number | undefined,
    startedAt: number,
    progress: () => CatchUpProgress,
    stopped: () => boolean,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waiter: Waiter = {
        head,
        rebuild,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(new ProjectionTimeoutError(this.projection, timeoutMs, progress().position, head));
        }, Math.max(0, timeoutMs - (performance.now() - startedAt)));
      }
      this.waiters.push(waiter);
      this.settle(progress());
      // A runner that ran and stopped will not catch up by itself.
      if (this.waiters.includes(waiter) && stopped()) {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        waiter.reject(new ProjectionStoppedError(this.projection));
      }
    });
  }

  settle(progress: CatchUpProgress): void {
    if (this.waiters.length === 0 || progress.blocked) return;
    const ready = this.waiters.filter((w) => w.head <= progress.position && w.rebuild <= progress.rebuildsDone);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => !ready.includes(w));
    for (const waiter of ready) waiter.resolve();
  }

  rejectAll(error: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }
}
