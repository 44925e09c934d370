import { ConsumerLoop, defaultOwner, positiveInteger } from '../consumers/consumer-loop.js';
import { isTransientError } from '../consumers/transient.js';
import { InvalidArgumentError } from '../errors.js';
import type { AnyEvent } from '../events/types.js';
import { consoleLogger, type Logger } from '../logging.js';
import type { EventStore, ReadAllFilter } from '../store/event-store.js';
import { resolveReadAllFilter } from '../store/read-filter.js';
import { resolvePoisonEventPolicy, type DeadLetterStore } from './dead-letters.js';
import {
  CheckpointConflictError,
  ProjectionLockedError,
  ProjectionLockLostError,
  ProjectionStoppedError,
  ProjectionTimeoutError,
} from './errors.js';
import type { Projection } from './projection.js';
import { missingReset, ProjectionWorker } from './projection-worker.js';
import { backoffDelay, resolveRetryPolicy, type RetryPolicy } from './retry.js';
import { RunnerErrorRecorder, type StoredRunnerError } from './runner-error.js';
import type { ProjectionRunnerSettings, ProjectionState, ProjectionStatus } from './runner-types.js';
import type { Checkpoint, ProjectionLock, ProjectionTarget, WakeUpSource } from './target.js';
import { CatchUpWaiters } from './waiters.js';

export type { ProjectionBatch, ProjectionErrorInfo, ProjectionRunnerSettings, ProjectionState, ProjectionStatus } from './runner-types.js';

export interface ProjectionRunnerOptions<E extends AnyEvent, Ctx> extends ProjectionRunnerSettings {
  readonly store: EventStore;
  readonly projection: Projection<E, Ctx>;
  readonly target: ProjectionTarget<Ctx>;
  readonly lock: ProjectionLock;
  readonly wakeUps?: WakeUpSource;
  /** Read only these events (types, stream categories), filtered by the store. Default: all. */
  readonly filter?: ReadAllFilter;
}

/**
 * Runs an async projection: reads `readAll` from the stored checkpoint in batches, applies the
 * handlers and moves the checkpoint (in one transaction when the target is `exactly-once`), then
 * tails the log, woken by appends and polling. Holds the projection's lock while it runs, so only
 * one runner (in any process) applies a projection.
 *
 * Transient faults anywhere (reading the log or the head, the lock, the wake-up connection,
 * commits) are reported to `onError` and retried with capped exponential backoff and jitter, for
 * as long as the runner runs; it resumes from its checkpoint, so nothing is skipped or applied
 * twice. A handler that keeps failing is retried `retry.maxAttempts` times, then parked or the
 * runner stops naming the event (`poisonEvents`). Other faults stop the runner with a typed error.
 */
export class ProjectionRunner<E extends AnyEvent, Ctx> {
  readonly projection: Projection<E, Ctx>;
  readonly owner: string;
  private readonly store: EventStore;
  private readonly target: ProjectionTarget<Ctx>;
  private readonly settings: ProjectionRunnerSettings;
  private readonly loop: ConsumerLoop;
  private readonly worker: ProjectionWorker<E, Ctx>;
  private readonly waiters: CatchUpWaiters;
  private ended: Promise<ProjectionStatus> | undefined;
  private readonly retry: RetryPolicy;
  private readonly isTransient: (error: unknown) => boolean;
  private readonly errors: RunnerErrorRecorder;

  constructor(options: ProjectionRunnerOptions<E, Ctx>) {
    this.store = options.store;
    this.projection = options.projection;
    this.target = options.target;
    this.settings = options;
    this.waiters = new CatchUpWaiters(options.projection.name);
    const whenLocked = options.whenLocked ?? 'wait';
    if (whenLocked !== 'wait' && whenLocked !== 'fail') {
      throw new InvalidArgumentError(`whenLocked must be 'wait' or 'fail', got ${String(whenLocked)}.`);
    }
    const poisonEvents = resolvePoisonEventPolicy(options.poisonEvents);
    if (poisonEvents === 'park' && options.target.deadLetters === undefined) {
      throw new InvalidArgumentError(
        `Projection '${options.projection.name}': poisonEvents 'park' needs a read model that keeps dead letters; this target keeps none.`,
      );
    }
    this.owner = options.owner ?? defaultOwner();
    const target = options.target;
    const logger = options.logger ?? consoleLogger;
    this.errors = new RunnerErrorRecorder(
      options.projection.name,
      target.recordError === undefined ? undefined : { recordError: (name, error) => target.recordError!(name, error) },
      {
        onWriteError: (error) =>
          logger.warn(`'${options.projection.name}' could not store its last error beside the checkpoint: ${error instanceof Error ? error.message : String(error)}`, {
            consumer: options.projection.name,
          }),
      },
    );
    const retry = resolveRetryPolicy(options.retry);
    this.retry = retry;
    const classifyError = options.target.classifyError;
    // A checkpoint that moved under the runner means another runner wrote it (after this one lost
    // its lock): start over from the stored checkpoint, under the lock again.
    const classify = (error: unknown): boolean | undefined =>
      error instanceof CheckpointConflictError ? true : classifyError?.(error);
    const isTransient = (error: unknown): boolean => isTransientError(error, classify);
    this.isTransient = isTransient;
    this.worker = new ProjectionWorker({
      store: options.store,
      projection: options.projection,
      target: options.target,
      batchSize: positiveInteger('batchSize', options.batchSize, 500),
      filter: options.filter === undefined ? undefined : (resolveReadAllFilter(options.filter) as ReadAllFilter | undefined),
      pollIntervalMs: positiveInteger('pollIntervalMs', options.pollIntervalMs, 1_000),
      progressIntervalMs: options.progressIntervalMs ?? 500,
      retry,
      poisonEvents,
      isTransient,
      onProgress: options.onProgress,
      onBatch: options.onBatch,
      onAdvance: () => this.waiters.settle(this.worker.progress),
    });
    this.loop = new ConsumerLoop(
      {
        name: options.projection.name,
        owner: this.owner,
        lock: options.lock,
        wakeUps: options.wakeUps,
        retry,
        whenLocked,
        lockRetryMs: positiveInteger('lockRetryMs', options.lockRetryMs, 1_000),
        classify,
        logger: options.logger as Logger | undefined,
        onError: options.onError,
        onFault: (error, info) => this.errors.fault(error, info),
        onProgressed: () => this.errors.recovered(),
        onChange: () => this.settings.onStatus?.(this.status),
        onEnd: (failure) => this.waiters.rejectAll(failure ?? new ProjectionStoppedError(this.projection.name)),
        errors: {
          locked: (name) => new ProjectionLockedError(name),
          lockLost: (name, reason, cause) => new ProjectionLockLostError(name, reason, { cause }),
        },
      },
      this.worker,
    );
  }

  get state(): ProjectionState {
    return this.loop.state;
  }

  /** The last checkpoint this runner read or committed. */
  get checkpoint(): Checkpoint | undefined {
    return this.worker.current;
  }

  /** Why the runner stopped, when it failed. */
  get error(): Error | undefined {
    return this.loop.error;
  }

  /**
   * The dead letters of this runner's read model (list, retry, discard); undefined when the target
   * keeps none. Retries are carried out by a running runner of the projection.
   */
  get deadLetters(): DeadLetterStore | undefined {
    return this.target.deadLetters;
  }

  get status(): ProjectionStatus {
    const position = this.worker.current?.position ?? 0;
    const head = this.worker.headPosition;
    const lastError = this.loop.lastError;
    return Object.freeze({
      projection: this.projection.name,
      state: this.loop.state,
      position,
      headPosition: head,
      lag: head === undefined ? undefined : Math.max(0, head - position),
      parked: this.worker.parked,
      error: this.loop.error,
      lastError: lastError?.error,
      lastErrorAt: lastError?.at,
      owner: this.owner,
    });
  }

  /**
   * Starts the runner. Resolves once it holds the lock, or — with `whenLocked: 'wait'` — once it
   * stands by for it (or retries a transient fault); rejects with `ProjectionLockedError` under
   * `whenLocked: 'fail'`.
   */
  start(): Promise<void> {
    if (this.loop.running) return Promise.resolve();
    const started = this.loop.start();
    this.ended = this.loop.whenStopped().then(() => this.status);
    return started;
  }

  /** Finishes the batch in flight, releases the lock and resolves. The checkpoint stays consistent. */
  async stop(): Promise<void> {
    await this.loop.stop();
    await this.errors.flush();
  }

  /** Resolves with the final status once the runner has stopped or failed. */
  async whenStopped(): Promise<ProjectionStatus> {
    const status = await (this.ended ?? this.status);
    await this.errors.flush();
    return status;
  }

  /** The last fault as stored beside the checkpoint (what `eventfold projections status` shows); undefined when none or not kept. */
  async storedError(): Promise<StoredRunnerError | undefined> {
    return this.target.readError?.(this.projection.name);
  }

  /**
   * Resolves when the checkpoint reaches the store's head position as of this call (and any
   * rebuild in progress is done). Rejects when the runner fails or stops first, or after `timeoutMs`.
   */
  async waitUntilCaughtUp(options: { readonly timeoutMs?: number } = {}): Promise<void> {
    if (this.loop.state === 'failed') throw this.loop.error!;
    const started = performance.now();
    const head = await this.readHead(options.timeoutMs);
    return this.addWaiter(head, this.worker.rebuildsRequested, options.timeoutMs, started);
  }

  /**
   * Empties the read model with the projection's `reset(ctx)`, resets the checkpoint (together,
   * where the target is exactly-once) and replays the log from the start, reporting progress to
   * `onProgress`. Starts the runner if needed; resolves when the replay reached the head position
   * as of this call. The runner keeps tailing afterwards.
   */
  async rebuild(options: { readonly timeoutMs?: number } = {}): Promise<void> {
    if (this.projection.reset === undefined) throw missingReset(this.projection.name);
    const generation = this.worker.requestRebuild();
    this.loop.wake();
    if (!this.loop.running) await this.start();
    const started = performance.now();
    const head = await this.readHead(options.timeoutMs);
    return this.addWaiter(head, generation, options.timeoutMs, started);
  }

  /**
   * The store's head for a waiter, read with the runner's retry policy: a transient fault (the
   * runner itself is riding it out) is not the caller's failure. Gives up on a permanent fault,
   * when the runner ends, or at the caller's timeout.
   */
  private async readHead(timeoutMs: number | undefined): Promise<number> {
    const deadline = timeoutMs === undefined ? Number.POSITIVE_INFINITY : performance.now() + timeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.store.headPosition();
      } catch (error) {
        if (!this.isTransient(error)) throw error;
        if (this.loop.state === 'failed') throw this.loop.error!;
        if (!this.loop.running) throw new ProjectionStoppedError(this.projection.name);
        const delay = backoffDelay(this.retry, attempt);
        if (performance.now() + delay > deadline) {
          throw new ProjectionTimeoutError(this.projection.name, timeoutMs!, this.worker.current?.position ?? 0, this.worker.headPosition ?? 0);
        }
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  private addWaiter(head: number, rebuild: number, timeoutMs: number | undefined, startedAt: number): Promise<void> {
    return this.waiters.add(
      head,
      rebuild,
      timeoutMs,
      startedAt,
      () => this.worker.progress,
      () => !this.loop.running && this.loop.state === 'stopped',
    );
  }
}

