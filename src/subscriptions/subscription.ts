import { isTransientError } from '../consumers/transient.js';
import { InvalidArgumentError } from '../errors.js';
import type { RecordedEvent } from '../events/types.js';
import type { CheckpointStore } from '../projections/checkpoint-store.js';
import type { DeadLetterStore, DeadLetterWrite, StandaloneDeadLetterStore } from '../projections/dead-letters.js';
import { ProjectionHandlerError } from '../projections/errors.js';
import { InMemoryProjectionLock } from '../projections/in-memory.js';
import { defineProjection, type MaybePromise } from '../projections/projection.js';
import { ProjectionRunner } from '../projections/runner.js';
import type { ProjectionRunnerSettings, ProjectionStatus } from '../projections/runner-types.js';
import type { Checkpoint, ProjectionLock, ProjectionTarget, WakeUpSource } from '../projections/target.js';
import type { EventStore, ReadAllFilter } from '../store/event-store.js';

/**
 * Where a subscription starts when it has no checkpoint yet: the first event of the log, the
 * head of the log (only what is appended from now on), or after a given position.
 */
export type SubscriptionStart = 'beginning' | 'end' | { readonly afterPosition: number };

export interface SubscriptionOptions extends ProjectionRunnerSettings {
  /** Names the checkpoint, the lock and the dead letters; 1-200 characters. */
  readonly name: string;
  readonly store: EventStore;
  /**
   * Where the position is kept (`SqliteCheckpointStore`, `PostgresCheckpointStore`, … or
   * `InMemoryCheckpointStore`). It is saved after `handle` resolved: delivery is at least once.
   */
  readonly checkpoints: CheckpointStore;
  /**
   * Receives the events in log order, in batches of at most `batchSize`. Resolving means the batch
   * is done; throwing retries it (transient faults without limit, others `retry.maxAttempts`
   * times, then `poisonEvents`). Throw `SubscriptionEventError` to name the event that failed.
   */
  readonly handle: (events: readonly RecordedEvent[]) => MaybePromise<void>;
  /** Default `'beginning'`. Only used when there is no checkpoint yet. */
  readonly from?: SubscriptionStart;
  /** Only events of these types and/or stream categories, filtered by the store. */
  readonly filter?: ReadAllFilter;
  /** One subscriber per name across processes: `SqliteProjectionLock`, `PostgresProjectionLock`. Default: this process only. */
  readonly lock?: ProjectionLock;
  /** Wakes the subscription on appends (`inMemoryWakeUps`, the SQLite and PostgreSQL wake-ups); it polls as well. */
  readonly wakeUps?: WakeUpSource;
  /** Where parked events go, for `poisonEvents: 'park'`. */
  readonly deadLetters?: StandaloneDeadLetterStore;
  /** Transient errors of `handle` (a broker's): retried without limit, never parked. */
  readonly isTransient?: (error: unknown) => boolean;
}

/** Thrown by a subscription's `handle` to say which event of the batch failed (so that one is retried, or parked). */
export class SubscriptionEventError extends Error {
  constructor(
    readonly eventId: string,
    options: { cause?: unknown },
  ) {
    super(`event ${eventId} failed`, options);
    this.name = 'SubscriptionEventError';
  }
}

/**
 * A durable, checkpointed reader of the global log: it catches up in batches from its
 * checkpoint (or from where `from` says), then tails the log, woken by appends and polling. It is
 * the projection runner underneath — the same lock, retries with backoff, status and dead letters
 * — with a batch handler instead of a read model. Memory stays bounded by `batchSize`: the next
 * batch is read only after `handle` resolved (backpressure).
 */
export class Subscription {
  readonly name: string;
  private readonly runner: ProjectionRunner<never, RecordedEvent[]>;
  private readonly target: SubscriptionTarget;

  constructor(options: SubscriptionOptions) {
    if (typeof options?.handle !== 'function') throw new InvalidArgumentError('A subscription needs a handle(events) function.');
    this.name = options.name;
    const from = options.from ?? 'beginning';
    if (
      from !== 'beginning' &&
      from !== 'end' &&
      !(typeof from === 'object' && from !== null && Number.isSafeInteger(from.afterPosition) && from.afterPosition >= 0)
    ) {
      throw new InvalidArgumentError(`from must be 'beginning', 'end' or { afterPosition: n >= 0 }, got ${JSON.stringify(from)}.`);
    }
    this.target = new SubscriptionTarget(options, from);
    const classifyUser = options.isTransient;
    if (classifyUser !== undefined) this.target.classifyError = (error) => (classifyUser(error) ? true : undefined);
    const projection = defineProjection<never, RecordedEvent[]>({
      name: options.name,
      handlers: {},
      any: (event, batch) => void batch.push(event as RecordedEvent),
    });
    this.runner = new ProjectionRunner<never, RecordedEvent[]>({
      ...options,
      projection,
      target: this.target,
      lock: options.lock ?? new InMemoryProjectionLock(),
    });
  }

  /** Starts reading; resolves once running (or standing by for the lock). */
  start(): Promise<void> {
    return this.runner.start();
  }

  /** Finishes the batch in hand, saves its checkpoint and stops. */
  stop(): Promise<void> {
    return this.runner.stop().then(() => undefined);
  }

  /** Resolves when the checkpoint has reached the head of the log as of this call. */
  waitUntilCaughtUp(options?: { readonly timeoutMs?: number }): Promise<void> {
    return this.runner.waitUntilCaughtUp(options);
  }

  get status(): ProjectionStatus {
    return this.runner.status;
  }

  get checkpoint(): Checkpoint | undefined {
    return this.runner.checkpoint;
  }

  get deadLetters(): DeadLetterStore | undefined {
    return this.runner.deadLetters;
  }
}

class SubscriptionTarget implements ProjectionTarget<RecordedEvent[]> {
  readonly delivery = 'at-least-once' as const;
  readonly synchronous = false;
  readonly deadLetters: StandaloneDeadLetterStore | undefined;
  classifyError: ((error: unknown) => boolean | undefined) | undefined;

  constructor(
    private readonly options: SubscriptionOptions,
    private readonly from: SubscriptionStart,
  ) {
    this.deadLetters = options.deadLetters;
  }

  async prepare(): Promise<void> {
    const migrate = (this.options.checkpoints as { migrate?: () => unknown }).migrate;
    if (typeof migrate === 'function') await migrate.call(this.options.checkpoints);
  }

  async readCheckpoint(name: string): Promise<Checkpoint | undefined> {
    const stored = await this.options.checkpoints.load(name);
    if (stored !== undefined || this.from === 'beginning') return stored;
    // First start: fix the starting point once, so a restart does not move it.
    const position = this.from === 'end' ? await this.options.store.headPosition() : this.from.afterPosition;
    const start: Checkpoint = { position, version: 1 };
    await this.options.checkpoints.save(name, undefined, start);
    return start;
  }

  async commit(
    name: string,
    expected: Checkpoint | undefined,
    next: Checkpoint | undefined,
    work: (batch: RecordedEvent[]) => MaybePromise<void>,
    deadLetter?: DeadLetterWrite,
  ): Promise<void> {
    const batch: RecordedEvent[] = [];
    await work(batch);
    if (batch.length > 0) {
      try {
        await this.options.handle(batch);
      } catch (error) {
        if (this.classifyError?.(error) === true || isTransientError(error)) throw error;
        // Name the failing event, so the runner retries it alone and parks only it.
        const failedId = error instanceof SubscriptionEventError ? error.eventId : undefined;
        const failed = batch.find((e) => e.eventId === failedId) ?? batch[0]!;
        throw new ProjectionHandlerError(name, failed, error instanceof SubscriptionEventError ? error.cause : error);
      }
    }
    if (deadLetter !== undefined) {
      if (this.deadLetters === undefined) throw new InvalidArgumentError(`Subscription '${name}' keeps no dead letters.`);
      await this.deadLetters.write(name, deadLetter);
    }
    if (next !== undefined) await this.options.checkpoints.save(name, expected, next);
  }
}
