import { InvalidArgumentError, isEventfoldError } from '../errors.js';
import type { AnyEvent, RecordedEvent } from '../events/types.js';
import type { EventStore } from '../store/event-store.js';
import {
  CheckpointConflictError,
  ProjectionFailedError,
  ProjectionHandlerError,
  ProjectionLockedError,
  ProjectionLockLostError,
  ProjectionStoppedError,
  ProjectionTimeoutError,
} from './errors.js';
import { ProgressMeter, type ProjectionProgress } from './progress.js';
import { applyEventsAsync, applyEventsSync, runHookSync, type MaybePromise, type Projection } from './projection.js';
import { backoffDelay, resolveRetryPolicy, type RetryPolicy } from './retry.js';
import type { Checkpoint, ProjectionLease, ProjectionLock, ProjectionTarget, WakeUpSource } from './target.js';

export type ProjectionState =
  | 'idle'
  | 'waiting-for-lock'
  | 'catching-up'
  | 'rebuilding'
  | 'live'
  | 'stopping'
  | 'stopped'
  | 'failed';

export interface ProjectionStatus {
  readonly projection: string;
  readonly state: ProjectionState;
  /** Last position applied (0 before the first). */
  readonly position: number;
  /** Set when `state` is `'failed'`. */
  readonly error: Error | undefined;
}

export interface ProjectionErrorInfo {
  /** Failed attempts so far for the current event (or batch). */
  readonly attempt: number;
  readonly willRetry: boolean;
  /** Delay before the next attempt, when `willRetry`. */
  readonly delayMs: number;
}

/** Options every runner takes; adapter runners add their store and fill in target, lock and wake-ups. */
export interface ProjectionRunnerSettings {
  /** Most events per read-model transaction. Default 500. */
  readonly batchSize?: number;
  /** How often to look for new events when no wake-up arrives. Default 1,000 ms. */
  readonly pollIntervalMs?: number;
  readonly retry?: Partial<RetryPolicy>;
  /** When another runner holds the projection: stand by and poll (default) or fail `start()`. */
  readonly whenLocked?: 'wait' | 'fail';
  /** How often a waiting runner tries the lock. Default 1,000 ms. */
  readonly lockRetryMs?: number;
  /** Names this runner in lock rows and logs. Default: pid + random suffix. */
  readonly owner?: string;
  /** Least time between two progress reports. Default 500 ms (the last report always comes). */
  readonly progressIntervalMs?: number;
  readonly onStatus?: (status: ProjectionStatus) => void;
  /** Every failed attempt, retried or not. */
  readonly onError?: (error: Error, info: ProjectionErrorInfo) => void;
  readonly onProgress?: (progress: ProjectionProgress) => void;
}

export interface ProjectionRunnerOptions<E extends AnyEvent, Ctx> extends ProjectionRunnerSettings {
  readonly store: EventStore;
  readonly projection: Projection<E, Ctx>;
  readonly target: ProjectionTarget<Ctx>;
  readonly lock: ProjectionLock;
  readonly wakeUps?: WakeUpSource;
}

interface Waiter {
  readonly head: number;
  readonly rebuild: number;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

/** A wake-up flag the loop can sleep on: set by appends, stop and rebuild requests, or a timeout. */
class Alarm {
  private pending = false;
  private ring: (() => void) | undefined;

  wake(): void {
    this.pending = true;
    this.ring?.();
  }

  sleep(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.ring = undefined;
        this.pending = false;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.ring = done;
    });
  }
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(`${name} must be a positive integer, got ${String(value)}.`);
  }
  return value;
}

function defaultOwner(): string {
  const pid = typeof process === 'object' ? process.pid : 0;
  return `pid-${pid}-${crypto.randomUUID().slice(0, 8)}`;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * Runs an async projection: reads `readAll` from the stored checkpoint in batches, applies the
 * handlers and moves the checkpoint (in one transaction when the target is `exactly-once`), then
 * tails the log, woken by appends and polling. Holds the projection's lock while it runs, so only
 * one runner (in any process) applies a projection. A handler that keeps failing stops the runner
 * with a `ProjectionHandlerError` naming the event: events are never skipped.
 */
export class ProjectionRunner<E extends AnyEvent, Ctx> {
  readonly projection: Projection<E, Ctx>;
  readonly owner: string;
  private readonly store: EventStore;
  private readonly target: ProjectionTarget<Ctx>;
  private readonly lock: ProjectionLock;
  private readonly wakeUps: WakeUpSource | undefined;
  private readonly batchSize: number;
  private readonly pollIntervalMs: number;
  private readonly lockRetryMs: number;
  private readonly progressIntervalMs: number;
  private readonly retry: RetryPolicy;
  private readonly whenLocked: 'wait' | 'fail';
  private readonly settings: ProjectionRunnerSettings;

  private readonly alarm = new Alarm();
  private waiters: Waiter[] = [];
  private loop: Promise<ProjectionStatus> | undefined;
  private stopRequested = false;
  private lost: ProjectionLockLostError | undefined;
  private current: Checkpoint | undefined;
  private currentState: ProjectionState = 'idle';
  private failure: Error | undefined;
  private everLive = false;
  private lastYield = 0;
  private rebuildReason: 'requested' | 'version-changed' | undefined;
  private rebuildsRequested = 0;
  private rebuildsDone = 0;
  private rebuilding: { generation: number; meter: ProgressMeter } | undefined;

  constructor(options: ProjectionRunnerOptions<E, Ctx>) {
    this.store = options.store;
    this.projection = options.projection;
    this.target = options.target;
    this.lock = options.lock;
    this.wakeUps = options.wakeUps;
    this.settings = options;
    this.batchSize = positiveInteger('batchSize', options.batchSize, 500);
    this.pollIntervalMs = positiveInteger('pollIntervalMs', options.pollIntervalMs, 1_000);
    this.lockRetryMs = positiveInteger('lockRetryMs', options.lockRetryMs, 1_000);
    this.progressIntervalMs = options.progressIntervalMs ?? 500;
    this.retry = resolveRetryPolicy(options.retry);
    this.whenLocked = options.whenLocked ?? 'wait';
    if (this.whenLocked !== 'wait' && this.whenLocked !== 'fail') {
      throw new InvalidArgumentError(`whenLocked must be 'wait' or 'fail', got ${String(this.whenLocked)}.`);
    }
    this.owner = options.owner ?? defaultOwner();
  }

  get state(): ProjectionState {
    return this.currentState;
  }

  /** The last checkpoint this runner read or committed. */
  get checkpoint(): Checkpoint | undefined {
    return this.current;
  }

  /** Why the runner stopped, when it failed. */
  get error(): Error | undefined {
    return this.failure;
  }

  get status(): ProjectionStatus {
    return Object.freeze({
      projection: this.projection.name,
      state: this.currentState,
      position: this.current?.position ?? 0,
      error: this.failure,
    });
  }

  /**
   * Starts the runner. Resolves once it holds the lock, or — with `whenLocked: 'wait'` — once it
   * stands by for it; rejects with `ProjectionLockedError` under `whenLocked: 'fail'`.
   */
  start(): Promise<void> {
    if (this.loop !== undefined) return Promise.resolve();
    this.stopRequested = false;
    this.failure = undefined;
    this.lost = undefined;
    let started!: { resolve: () => void; reject: (error: Error) => void };
    const startedPromise = new Promise<void>((resolve, reject) => {
      started = { resolve, reject };
    });
    this.loop = this.run(started);
    return startedPromise;
  }

  /** Finishes the batch in flight, releases the lock and resolves. The checkpoint stays consistent. */
  async stop(): Promise<void> {
    const loop = this.loop;
    if (loop === undefined) return;
    this.stopRequested = true;
    if (this.currentState !== 'failed') this.setState('stopping');
    this.alarm.wake();
    await loop;
  }

  /** Resolves with the final status once the runner has stopped or failed. */
  async whenStopped(): Promise<ProjectionStatus> {
    return this.loop ?? this.status;
  }

  /**
   * Resolves when the checkpoint reaches the store's head position as of this call (and any
   * rebuild in progress is done). Rejects when the runner fails or stops first, or after `timeoutMs`.
   */
  async waitUntilCaughtUp(options: { readonly timeoutMs?: number } = {}): Promise<void> {
    if (this.currentState === 'failed') throw this.failure!;
    const head = await this.store.headPosition();
    return this.addWaiter(head, this.rebuildsRequested, options.timeoutMs);
  }

  /**
   * Empties the read model with the projection's `reset(ctx)`, resets the checkpoint (together,
   * where the target is exactly-once) and replays the log from the start, reporting progress to
   * `onProgress`. Starts the runner if needed; resolves when the replay reached the head position
   * as of this call. The runner keeps tailing afterwards.
   */
  async rebuild(options: { readonly timeoutMs?: number } = {}): Promise<void> {
    if (this.projection.reset === undefined) throw this.missingReset();
    const generation = ++this.rebuildsRequested;
    this.rebuildReason = 'requested';
    this.alarm.wake();
    if (this.loop === undefined) await this.start();
    const head = await this.store.headPosition();
    return this.addWaiter(head, generation, options.timeoutMs);
  }

  private async run(started: { resolve: () => void; reject: (error: Error) => void }): Promise<ProjectionStatus> {
    let lease: ProjectionLease | undefined;
    let unsubscribe: (() => MaybePromise<void>) | undefined;
    let failure: Error | undefined;
    // A failure before start() resolved is reported by its rejection; later ones need a voice.
    let startSettled = false;
    let reported = false;
    const onStarted = (): void => {
      startSettled = true;
      started.resolve();
    };
    try {
      await this.target.prepare();
      lease = await this.acquire(onStarted);
      if (lease !== undefined) {
        lease.onLost((reason, cause) => {
          this.lost = new ProjectionLockLostError(this.projection.name, reason, { cause });
          this.alarm.wake();
        });
        unsubscribe = await this.wakeUps?.(() => this.alarm.wake());
        await this.process();
      }
    } catch (error) {
      failure = asError(error);
      started.reject(failure);
      reported = startSettled === false;
    }
    try {
      await unsubscribe?.();
    } catch {
      // The wake-up source is best effort; polling covers for it.
    }
    try {
      await lease?.release();
    } catch {
      // A lock whose connection is gone is released by the database already.
    }
    this.loop = undefined;
    if (failure !== undefined) {
      this.failure = failure;
      this.setState('failed');
      this.rejectWaiters(failure);
      if (!reported && this.settings.onError === undefined && this.settings.onStatus === undefined) {
        console.error(`[eventfold] projection '${this.projection.name}' stopped:`, failure);
      }
    } else {
      this.setState('stopped');
      this.rejectWaiters(new ProjectionStoppedError(this.projection.name));
    }
    return this.status;
  }

  private async acquire(onStarted: () => void): Promise<ProjectionLease | undefined> {
    while (!this.stopRequested) {
      const lease = await this.lock.tryAcquire(this.projection.name, this.owner);
      if (lease !== undefined) {
        onStarted();
        if (!this.stopRequested) return lease;
        await lease.release();
        return undefined;
      }
      if (this.whenLocked === 'fail') throw new ProjectionLockedError(this.projection.name);
      if (this.currentState !== 'waiting-for-lock') {
        this.setState('waiting-for-lock');
        onStarted();
      }
      await this.alarm.sleep(this.lockRetryMs);
    }
    onStarted();
    return undefined;
  }

  private async process(): Promise<void> {
    const name = this.projection.name;
    const setup = this.projection.setup;
    if (setup !== undefined) {
      await this.target.commit(name, undefined, undefined, (ctx) => this.runHook('setup', setup, ctx));
    }
    this.current = await this.target.readCheckpoint(name);
    if (this.current !== undefined && this.current.version !== this.projection.version) {
      this.rebuildReason ??= 'version-changed';
    }
    this.setState(this.rebuildReason !== undefined ? 'rebuilding' : 'catching-up');
    while (!this.stopRequested) {
      if (this.lost !== undefined) throw this.lost;
      if (this.rebuildReason !== undefined) await this.reset(this.rebuildReason);
      const head = await this.store.headPosition();
      if (head > (this.current?.position ?? 0)) {
        await this.catchUp(head);
        continue;
      }
      this.finishRebuild();
      this.everLive = true;
      this.setState('live');
      this.settleWaiters();
      await this.alarm.sleep(this.pollIntervalMs);
    }
  }

  private async reset(reason: 'requested' | 'version-changed'): Promise<void> {
    const reset = this.projection.reset;
    if (reset === undefined) throw this.missingReset();
    const generation = this.rebuildsRequested;
    this.rebuildReason = undefined;
    this.setState('rebuilding');
    const head = await this.store.headPosition();
    const next: Checkpoint = { position: 0, version: this.projection.version };
    await this.target.commit(this.projection.name, this.current, next, (ctx) => this.runHook('reset', reset, ctx));
    this.current = next;
    const meter = new ProgressMeter(
      this.projection.name,
      'rebuild',
      reason,
      0,
      head,
      this.progressIntervalMs,
      this.settings.onProgress,
    );
    this.rebuilding = { generation, meter };
    meter.record(0, 0);
  }

  private finishRebuild(): void {
    if (this.rebuilding === undefined) return;
    this.rebuilding.meter.finish(this.current?.position ?? 0);
    this.rebuildsDone = Math.max(this.rebuildsDone, this.rebuilding.generation);
    this.rebuilding = undefined;
  }

  private async catchUp(head: number): Promise<void> {
    const from = this.current?.position ?? 0;
    const meter =
      this.rebuilding?.meter ??
      (this.everLive
        ? undefined
        : new ProgressMeter(this.projection.name, 'catch-up', undefined, from, head, this.progressIntervalMs, this.settings.onProgress));
    if (this.rebuilding === undefined && !this.everLive) this.setState('catching-up');
    // Batches of exactly `batchSize` events (the last one shorter), whatever the store's page size.
    let buffer: RecordedEvent[] = [];
    const flush = async (events: readonly RecordedEvent[]): Promise<boolean> => {
      const before = this.current?.position ?? 0;
      await this.applyBatch(events);
      const after = this.current?.position ?? 0;
      let applied = 0;
      for (const e of events) if (e.position > before && e.position <= after) applied++;
      meter?.record(applied, after);
      this.settleWaiters();
      await this.yieldToEventLoop();
      return this.stopRequested || this.lost !== undefined || this.rebuildReason !== undefined;
    };
    for await (const page of this.store.readAll({ fromPosition: from + 1 }).pages()) {
      let offset = 0;
      if (buffer.length > 0) {
        offset = Math.min(page.length, this.batchSize - buffer.length);
        for (let i = 0; i < offset; i++) buffer.push(page[i]!);
        if (buffer.length < this.batchSize) continue;
        const full = buffer;
        buffer = [];
        if (await flush(full)) return;
      }
      while (page.length - offset >= this.batchSize) {
        const batch = offset === 0 && page.length === this.batchSize ? page : page.slice(offset, offset + this.batchSize);
        offset += this.batchSize;
        if (await flush(batch)) return;
      }
      for (let i = offset; i < page.length; i++) buffer.push(page[i]!);
    }
    if (buffer.length > 0 && (await flush(buffer))) return;
    if (this.rebuilding === undefined && !this.everLive) meter?.finish(this.current?.position ?? 0);
  }

  /**
   * Commits a batch with retries. After a handler failure the events before the failing one are
   * committed at once, and the failing event is retried alone with backoff until it succeeds or
   * the attempts run out; then the runner stops with the error naming the event.
   */
  private async applyBatch(events: readonly RecordedEvent[]): Promise<void> {
    let remaining = events;
    let limit = remaining.length;
    let attempt = 0;
    let failing: { readonly position: number; readonly error: ProjectionHandlerError } | undefined;
    while (remaining.length > 0) {
      if (this.stopRequested) return;
      if (this.lost !== undefined) throw this.lost;
      const batch = remaining.length > limit ? remaining.slice(0, limit) : remaining;
      try {
        await this.commitBatch(batch);
      } catch (error) {
        if (this.isFatal(error)) throw error;
        attempt++;
        const index = error instanceof ProjectionHandlerError ? batch.findIndex((e) => e.position === error.position) : -1;
        if (index >= 0 && error instanceof ProjectionHandlerError) {
          failing = { position: error.position, error };
          limit = Math.max(1, index);
        }
        // With a good prefix before the failing event, commit that first (no delay, no attempt spent).
        const prefixFirst = index > 0;
        const willRetry = attempt < this.retry.maxAttempts;
        const delayMs = willRetry && !prefixFirst ? backoffDelay(this.retry, attempt) : 0;
        this.reportError(asError(error), { attempt, willRetry, delayMs });
        if (!willRetry && !prefixFirst) throw this.giveUp(error, attempt, index >= 0 ? batch[index] : undefined);
        if (delayMs > 0) await this.pause(delayMs);
        continue;
      }
      remaining = remaining.slice(batch.length);
      if (failing === undefined) {
        attempt = 0;
      } else if (batch.some((e) => e.position === failing!.position)) {
        failing = undefined;
        attempt = 0;
        limit = remaining.length;
      } else {
        // Only the events before the failing one were committed: retry it alone, after the backoff.
        limit = 1;
        if (attempt >= this.retry.maxAttempts) throw this.giveUp(failing.error, attempt, remaining[0]);
        await this.pause(backoffDelay(this.retry, attempt));
      }
    }
  }

  /**
   * Synchronous stores (SQLite, memory) resolve every await as a microtask, so a long catch-up
   * would starve timers — the lock heartbeat, other work of the process. Let a full event-loop
   * turn pass every 50 ms.
   */
  private async yieldToEventLoop(): Promise<void> {
    const now = performance.now();
    if (now - this.lastYield < 50) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.lastYield = performance.now();
  }

  /** Sleeps for a backoff; only `stop()` cuts it short (append wake-ups do not). */
  private async pause(ms: number): Promise<void> {
    const until = performance.now() + ms;
    while (!this.stopRequested) {
      const left = until - performance.now();
      if (left <= 0) return;
      await this.alarm.sleep(left);
    }
  }

  private async commitBatch(batch: readonly RecordedEvent[]): Promise<void> {
    const expected = this.current;
    const next: Checkpoint = { position: batch[batch.length - 1]!.position, version: this.projection.version };
    const projection = this.projection;
    await this.target.commit(
      projection.name,
      expected,
      next,
      this.target.synchronous
        ? (ctx) => applyEventsSync(projection, batch, ctx)
        : (ctx) => applyEventsAsync(projection, batch, ctx),
    );
    this.current = next;
  }

  private runHook(name: 'setup' | 'reset', hook: (ctx: Ctx) => MaybePromise<void>, ctx: Ctx): MaybePromise<void> {
    if (this.target.synchronous) return runHookSync(this.projection.name, name, hook, ctx);
    return hook(ctx);
  }

  private giveUp(error: unknown, attempts: number, event: RecordedEvent | undefined): Error {
    if (error instanceof ProjectionHandlerError && event !== undefined) return error.withAttempts(attempts, event);
    return new ProjectionFailedError(this.projection.name, this.current?.position ?? 0, attempts, error);
  }

  private isFatal(error: unknown): boolean {
    return (
      error instanceof CheckpointConflictError ||
      error instanceof ProjectionLockLostError ||
      isEventfoldError(error, 'STORE_CLOSED') ||
      isEventfoldError(error, 'INVALID_ARGUMENT')
    );
  }

  private missingReset(): Error {
    return new InvalidArgumentError(
      `Projection '${this.projection.name}' cannot be rebuilt: it has no reset(ctx) that empties its read model. ` +
        `Add one to its definition (a version bump also needs it).`,
    );
  }

  private reportError(error: Error, info: ProjectionErrorInfo): void {
    try {
      this.settings.onError?.(error, Object.freeze(info));
    } catch {
      // A throwing listener must not change what the runner does.
    }
  }

  private setState(state: ProjectionState): void {
    if (this.currentState === state) return;
    this.currentState = state;
    try {
      this.settings.onStatus?.(this.status);
    } catch {
      // See reportError.
    }
  }

  private addWaiter(head: number, rebuild: number, timeoutMs: number | undefined): Promise<void> {
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
          reject(new ProjectionTimeoutError(this.projection.name, timeoutMs, this.current?.position ?? 0, head));
        }, timeoutMs);
      }
      this.waiters.push(waiter);
      this.settleWaiters();
      // A runner that ran and stopped will not catch up by itself.
      if (this.waiters.includes(waiter) && this.loop === undefined && this.currentState === 'stopped') {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        waiter.reject(new ProjectionStoppedError(this.projection.name));
      }
    });
  }

  private settleWaiters(): void {
    if (this.waiters.length === 0) return;
    if (this.rebuildReason !== undefined || this.rebuilding !== undefined) return;
    const current = this.current;
    if (current !== undefined && current.version !== this.projection.version) return;
    const position = current?.position ?? 0;
    const ready = this.waiters.filter((w) => w.head <= position && w.rebuild <= this.rebuildsDone);
    if (ready.length === 0) return;
    this.waiters = this.waiters.filter((w) => !ready.includes(w));
    for (const waiter of ready) waiter.resolve();
  }

  private rejectWaiters(error: Error): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.reject(error);
  }
}
