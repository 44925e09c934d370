import type { CheckpointStore } from './checkpoint-store.js';
import type { MaybePromise } from './projection.js';
import type { Checkpoint, ProjectionTarget } from './target.js';

export interface AtLeastOnceTargetOptions<Ctx> {
  readonly checkpoints: CheckpointStore;
  /** The context handlers get (a client, an index, …), or a function that makes one per batch. */
  readonly context: () => MaybePromise<Ctx>;
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

  constructor(private readonly options: AtLeastOnceTargetOptions<Ctx>) {}

  async prepare(): Promise<void> {}

  readCheckpoint(projection: string): Promise<Checkpoint | undefined> {
    return this.options.checkpoints.load(projection);
  }

  async commit(
    projection: string,
    expected: Checkpoint | undefined,
    next: Checkpoint | undefined,
    work: (ctx: Ctx) => MaybePromise<void>,
  ): Promise<void> {
    await work(await this.options.context());
    if (next !== undefined) await this.options.checkpoints.save(projection, expected, next);
  }
}
