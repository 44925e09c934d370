import { InvalidArgumentError } from '../errors.js';
import type { CheckpointStore } from './checkpoint-store.js';
import type { DeadLetterWrite, StandaloneDeadLetterStore } from './dead-letters.js';
import type { MaybePromise } from './projection.js';
import type { StoredRunnerError } from './runner-error.js';
import type { Checkpoint, ProjectionTarget } from './target.js';

export interface AtLeastOnceTargetOptions<Ctx> {
  readonly checkpoints: CheckpointStore;
  /** The context handlers get (a client, an index, …), or a function that makes one per batch. */
  readonly context: () => MaybePromise<Ctx>;
  /**
   * Where parked events go (needed for `poisonEvents: 'park'`). A letter is written after the
   * handlers and before the checkpoint, so a crash in between parks it again (same key) at worst.
   */
  readonly deadLetters?: StandaloneDeadLetterStore;
}

/**
 * A read model outside the checkpoint's database (a search index, a cache, another service). The
 * handlers run first and the checkpoint is saved after them, so a crash in between replays the
 * last batch: delivery is at-least-once and handlers must be idempotent (upserts keyed by event
 * id or stream version, not increments).
 */
export class AtLeastOnceTarget<Ctx> implements ProjectionTarget<Ctx> {
  readonly delivery = 'at-least-once' as const;
  readonly synchronous = false;

  readonly deadLetters: StandaloneDeadLetterStore | undefined;

  constructor(private readonly options: AtLeastOnceTargetOptions<Ctx>) {
    this.deadLetters = options.deadLetters;
  }

  async prepare(): Promise<void> {}

  async recordError(projection: string, error: StoredRunnerError | undefined): Promise<void> {
    await this.options.checkpoints.saveError?.(projection, error);
  }

  async readError(projection: string): Promise<StoredRunnerError | undefined> {
    return this.options.checkpoints.loadError?.(projection);
  }

  readCheckpoint(projection: string): Promise<Checkpoint | undefined> {
    return this.options.checkpoints.load(projection);
  }

  async commit(
    projection: string,
    expected: Checkpoint | undefined,
    next: Checkpoint | undefined,
    work: (ctx: Ctx) => MaybePromise<void>,
    deadLetter?: DeadLetterWrite,
  ): Promise<void> {
    await work(await this.options.context());
    if (deadLetter !== undefined) {
      if (this.deadLetters === undefined) throw new InvalidArgumentError(`Projection '${projection}': this target keeps no dead letters.`);
      await this.deadLetters.write(projection, deadLetter);
    }
    if (next !== undefined) await this.options.checkpoints.save(projection, expected, next);
  }
}
