import { InvalidArgumentError } from '../errors.js';
import { consoleLogger, type Logger } from '../logging.js';
import { Alarm } from './alarm.js';
import type { ConsumerLease, ConsumerLock, WakeUpSource } from './lock.js';
import { backoffDelay, type ConsumerErrorInfo, type RetryPolicy } from './retry.js';
import { isTransientError, type TransientErrorClassifier } from './transient.js';
import { WakeUpChannel } from './wake-up-channel.js';

export type { ConsumerErrorInfo };

/**
 * Where a consumer stands. `retrying`: it hit a transient fault (database unreachable, connection
 * dropped) and waits out a backoff before it tries again from its checkpoint.
 */
export type ConsumerState =
  | 'idle'
  | 'waiting-for-lock'
  | 'catching-up'
  | 'rebuilding'
  | 'live'
  | 'retrying'
  | 'stopping'
  | 'stopped'
  | 'failed';

/** What the loop tells the consumer it drives. */
export interface ConsumerSession {
  /** True once `stop()` was called or the lock was lost: finish the step in hand and return. */
  readonly interrupted: boolean;
  /** Sleeps until a wake-up, a stop, a lost lock, or `ms`. */
  sleep(ms: number): Promise<void>;
  /** Sleeps out a backoff; only a stop or a lost lock cut it short (wake-ups do not). */
  pause(ms: number): Promise<void>;
  setState(state: ConsumerState): void;
  /** The consumer got somewhere: the next transient fault starts the backoff from the beginning. */
  progressed(): void;
  /** Reports a failed attempt the consumer handles itself (a handler failure it retries). */
  report(error: Error, info: ConsumerErrorInfo): void;
  /** Lets timers run during a long synchronous catch-up (every 50 ms at most). */
  yieldToEventLoop(): Promise<void>;
}

/** The consumer-specific part: what to do while holding the lock. */
export interface ConsumerWorker {
  /** Creates tables and the like; retried like everything else until it succeeds once. */
  prepare(): Promise<void>;
  /**
   * Processes input until `session.interrupted`, then returns. Throwing hands the error to the
   * loop: transient faults restart the session (the lock is taken again and the worker resumes
   * from its checkpoint) after a backoff; anything else stops the consumer in state `failed`.
   */
  run(session: ConsumerSession): Promise<void>;
}

export interface ConsumerLoopOptions {
  /** Names the consumer in locks, errors and logs. */
  readonly name: string;
  readonly owner: string;
  readonly lock: ConsumerLock;
  readonly wakeUps: WakeUpSource | undefined;
  readonly retry: RetryPolicy;
  readonly whenLocked: 'wait' | 'fail';
  readonly lockRetryMs: number;
  /** The adapter's view of driver errors, and the consumer's own (e.g. a checkpoint conflict restarts). */
  readonly classify: TransientErrorClassifier | undefined;
  readonly logger: Logger | undefined;
  readonly onError: ((error: Error, info: ConsumerErrorInfo) => void) | undefined;
  /**
   * Every reported fault, retried or not (whether or not there is an `onError`), once this
   * consumer has held its lock: a standby's faults (or its failing to get the lock) are not the
   * consumer's to record.
   */
  readonly onFault?: ((error: Error, info: ConsumerErrorInfo) => void) | undefined;
  /** The consumer got somewhere (a commit, caught up): past faults are over. */
  readonly onProgressed?: (() => void) | undefined;
  /** Called on every state change and every reported fault; read the owner's status then. */
  readonly onChange: () => void;
  /** Called once the loop has ended: with the failure, or undefined after `stop()`. */
  readonly onEnd: (failure: Error | undefined) => void;
  /** The typed errors of the consumer kind (a projection's name them after projections). */
  readonly errors: {
    locked(name: string): Error;
    lockLost(name: string, reason: string, cause: unknown): Error;
  };
}

export function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

export function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new InvalidArgumentError(`${name} must be a positive integer, got ${String(value)}.`);
  }
  return value;
}

export function defaultOwner(): string {
  const pid = typeof process === 'object' ? process.pid : 0;
  return `pid-${pid}-${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * The one loop every long-running consumer shares (projection runners today; subscriptions, an
 * outbox relay or process managers can drive it the same way): take the lock (standing by while
 * another holder has it), open wake-ups, run the worker; on a transient fault anywhere — lock
 * attempt, LISTEN connection, reads, commits — report it, back off (capped, exponential, with
 * jitter), take the lock again and let the worker resume from its checkpoint; stop only on
 * `stop()` or a fault that retrying cannot fix.
 */
export class ConsumerLoop {
  private readonly alarm = new Alarm();
  private readonly logger: Logger;
  private loop: Promise<void> | undefined;
  private stopRequested = false;
  private lost: Error | undefined;
  private currentState: ConsumerState = 'idle';
  private failure: Error | undefined;
  private lastFault: { readonly error: Error; readonly at: Date } | undefined;
  private faults = 0;
  private lastYield = 0;
  private prepared = false;
  private lastReportFinal = false;
  private heldLock = false;

  constructor(
    private readonly options: ConsumerLoopOptions,
    private readonly worker: ConsumerWorker,
  ) {
    this.logger = options.logger ?? consoleLogger;
  }

  get state(): ConsumerState {
    return this.currentState;
  }

  /** Why the consumer stopped, when it failed. */
  get error(): Error | undefined {
    return this.failure;
  }

  /** The most recent fault reported (retried or not), and when. Kept after recovery. */
  get lastError(): { readonly error: Error; readonly at: Date } | undefined {
    return this.lastFault;
  }

  get running(): boolean {
    return this.loop !== undefined;
  }

  /** Wakes the worker's sleep (new input, a rebuild request). */
  wake(): void {
    this.alarm.wake();
  }

  /**
   * Starts the loop. Resolves once the lock is held, or the consumer stands by for it (or retries
   * a transient fault); rejects with `ConsumerLockedError` under `whenLocked: 'fail'`, or with a
   * permanent fault met before that.
   */
  start(): Promise<void> {
    if (this.loop !== undefined) return Promise.resolve();
    this.stopRequested = false;
    this.heldLock = false;
    this.failure = undefined;
    this.lost = undefined;
    let started!: { resolve: () => void; reject: (error: Error) => void };
    const startedPromise = new Promise<void>((resolve, reject) => {
      started = { resolve, reject };
    });
    const loop = this.run(started);
    this.loop = loop;
    void loop.finally(() => {
      if (this.loop === loop) this.loop = undefined;
    });
    return startedPromise;
  }

  /** Lets the worker finish its step, releases the lock and resolves once stopped. */
  async stop(): Promise<void> {
    const loop = this.loop;
    if (loop === undefined) return;
    if (this.currentState !== 'failed') this.setState('stopping');
    this.stopRequested = true;
    this.alarm.wake();
    await loop;
  }

  /** Resolves once the loop has ended (stopped or failed). */
  async whenStopped(): Promise<void> {
    await this.loop;
  }

  private readonly session: ConsumerSession = ((loop: ConsumerLoop): ConsumerSession => ({
    get interrupted(): boolean {
      return loop.interrupted;
    },
    sleep: (ms) => loop.alarm.sleep(ms),
    pause: (ms) => loop.pause(ms),
    setState: (state) => loop.setState(state),
    progressed: () => {
      loop.faults = 0;
      loop.options.onProgressed?.();
    },
    report: (error, info) => loop.report(error, info),
    yieldToEventLoop: () => loop.yieldToEventLoop(),
  }))(this);

  private get interrupted(): boolean {
    return this.stopRequested || this.lost !== undefined;
  }

  private async run(started: { resolve: () => void; reject: (error: Error) => void }): Promise<void> {
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      started.resolve();
    };
    let failure: Error | undefined;
    let rejectedStart = false;
    while (!this.stopRequested) {
      let lease: ConsumerLease | undefined;
      let wakeUps: WakeUpChannel | undefined;
      try {
        if (!this.prepared) {
          await this.worker.prepare();
          this.prepared = true;
        }
        lease = await this.acquire(settle);
        if (lease === undefined) break;
        this.heldLock = true;
        this.lost = undefined;
        lease.onLost((reason, cause) => {
          this.lost = this.options.errors.lockLost(this.options.name, reason, cause);
          this.alarm.wake();
        });
        if (this.options.wakeUps !== undefined) {
          wakeUps = new WakeUpChannel(this.options.wakeUps, {
            wake: () => this.alarm.wake(),
            retry: this.options.retry,
            report: (error, info) => this.report(error, info),
          });
          await wakeUps.open();
        }
        await this.worker.run(this.session);
        if (this.lost !== undefined && !this.stopRequested) throw this.lost;
      } catch (error) {
        const fault = asError(error);
        await this.close(wakeUps, lease);
        wakeUps = undefined;
        lease = undefined;
        // Whatever failed after the lock was lost (a stale commit, a dead connection) is the loss.
        const transient = this.lost !== undefined || this.isTransient(fault);
        this.lost = undefined;
        if (this.stopRequested && transient) break;
        if (!transient) {
          failure = fault;
          if (!settled) {
            settled = true;
            rejectedStart = true;
            started.reject(fault);
          }
          break;
        }
        this.faults++;
        const delayMs = backoffDelay(this.options.retry, this.faults);
        this.report(fault, { attempt: this.faults, willRetry: true, delayMs, transient: true });
        this.setState('retrying');
        settle();
        await this.pause(delayMs);
        continue;
      } finally {
        await this.close(wakeUps, lease);
      }
      break;
    }
    settle();
    // Not running any more from here on: a waiter added now is told so at once.
    this.loop = undefined;
    if (failure !== undefined) {
      this.failure = failure;
      // The worker reported a handler's last attempt already; any other end is reported here.
      if (!this.reportedAsFinal(failure)) this.report(failure, { attempt: 1, willRetry: false, delayMs: 0, transient: false }, !rejectedStart);
      this.lastFault = { error: failure, at: new Date() };
      this.setState('failed');
    } else {
      this.setState('stopped');
    }
    this.options.onEnd(failure);
  }

  private async close(wakeUps: WakeUpChannel | undefined, lease: ConsumerLease | undefined): Promise<void> {
    await wakeUps?.close();
    try {
      await lease?.release();
    } catch {
      // A lock whose connection is gone is released by the database already.
    }
  }

  private isTransient(error: unknown): boolean {
    return isTransientError(error, this.options.classify);
  }

  private async acquire(settle: () => void): Promise<ConsumerLease | undefined> {
    while (!this.stopRequested) {
      const lease = await this.options.lock.tryAcquire(this.options.name, this.options.owner);
      if (lease !== undefined) {
        settle();
        if (!this.stopRequested) return lease;
        await lease.release();
        return undefined;
      }
      if (this.options.whenLocked === 'fail') throw this.options.errors.locked(this.options.name);
      this.setState('waiting-for-lock');
      settle();
      await this.alarm.sleep(this.options.lockRetryMs);
    }
    return undefined;
  }

  private async pause(ms: number): Promise<void> {
    const until = performance.now() + ms;
    while (!this.interrupted) {
      const left = until - performance.now();
      if (left <= 0) return;
      await this.alarm.sleep(left);
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

  /** True when the last report was this failure's final attempt (the same error, or one wrapping the same cause). */
  private reportedAsFinal(failure: Error): boolean {
    const last = this.lastFault?.error;
    if (!this.lastReportFinal || last === undefined) return false;
    return last === failure || (last.cause !== undefined && last.cause === failure.cause);
  }

  private report(error: Error, info: ConsumerErrorInfo, log = true): void {
    this.lastFault = { error, at: new Date() };
    this.lastReportFinal = !info.willRetry;
    const frozen = Object.freeze({ ...info });
    try {
      if (this.heldLock) this.options.onFault?.(error, frozen);
    } catch {
      // See below.
    }
    if (this.options.onError !== undefined) {
      try {
        this.options.onError(error, frozen);
      } catch {
        // A throwing listener must not change what the consumer does.
      }
    } else if (!info.willRetry) {
      if (log) this.logger.error(`'${this.options.name}' stopped: ${error.message}`, { consumer: this.options.name, ...frozen });
    } else {
      this.logger.warn(
        `'${this.options.name}' attempt ${info.attempt} failed` + (info.willRetry ? `, retrying in ${Math.round(info.delayMs)} ms` : '') + `: ${error.message}`,
        { consumer: this.options.name, ...frozen },
      );
    }
    this.emitChange();
  }

  private setState(state: ConsumerState): void {
    if (this.currentState === state) return;
    // Once stopping, only the end states follow (a step in flight must not report 'live').
    if (this.stopRequested && state !== 'stopped' && state !== 'failed') return;
    this.currentState = state;
    this.emitChange();
  }

  private emitChange(): void {
    try {
      this.options.onChange();
    } catch {
      // See report.
    }
  }
}
