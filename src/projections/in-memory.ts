import type { AnyEvent } from '../events/types.js';
import type { EventStore } from '../store/event-store.js';
import { InMemoryEventStore } from '../store/in-memory-event-store.js';
import { InMemoryCheckpointStore } from './checkpoint-store.js';
import { InMemoryDeadLetterStore, type DeadLetterWrite } from './dead-letters.js';
import { InMemoryReadModel, type InMemoryReadModelTransaction } from './in-memory-read-model.js';
import { applyEventsSync, runHookSync, type MaybePromise, type Projection } from './projection.js';
import { ProjectionRunner, type ProjectionRunnerSettings } from './runner.js';
import type { StoredRunnerError } from './runner-error.js';
import type { Checkpoint, ProjectionLease, ProjectionLock, ProjectionTarget, WakeUpSource } from './target.js';

/** What in-memory handlers get: the read model's transaction (`ctx.readModel.table('users').set(…)`). */
export interface InMemoryProjectionContext {
  readonly readModel: InMemoryReadModelTransaction;
}

/** An `InMemoryReadModel` with its checkpoints beside it; read-model writes and checkpoint commit together. */
export class InMemoryProjectionTarget implements ProjectionTarget<InMemoryProjectionContext> {
  readonly delivery = 'exactly-once' as const;
  readonly synchronous = true;

  constructor(
    readonly readModel: InMemoryReadModel,
    readonly checkpoints: InMemoryCheckpointStore = new InMemoryCheckpointStore(),
    readonly deadLetters: InMemoryDeadLetterStore = new InMemoryDeadLetterStore(),
  ) {}

  async prepare(): Promise<void> {}

  async readCheckpoint(projection: string): Promise<Checkpoint | undefined> {
    return this.checkpoints.get(projection);
  }

  recordError(projection: string, error: StoredRunnerError | undefined): Promise<void> {
    return this.checkpoints.saveError(projection, error);
  }

  readError(projection: string): Promise<StoredRunnerError | undefined> {
    return this.checkpoints.loadError(projection);
  }

  async commit(
    projection: string,
    expected: Checkpoint | undefined,
    next: Checkpoint | undefined,
    work: (ctx: InMemoryProjectionContext) => MaybePromise<void>,
    deadLetter?: DeadLetterWrite,
  ): Promise<void> {
    this.readModel.transaction((tx) => {
      if (next !== undefined) this.checkpoints.assertExpected(projection, expected);
      runHookSync(projection, 'a handler', work, { readModel: tx });
    });
    // Cannot fail after the check above (single-threaded, no await in between): atomic with the writes.
    if (next !== undefined) this.checkpoints.compareAndSet(projection, expected, next);
    if (deadLetter !== undefined) this.deadLetters.write(projection, deadLetter);
  }
}

/** One runner per projection within this process; runners sharing a lock exclude each other. */
export class InMemoryProjectionLock implements ProjectionLock {
  private readonly owners = new Map<string, string>();

  async tryAcquire(projection: string, owner: string): Promise<ProjectionLease | undefined> {
    if (this.owners.has(projection)) return undefined;
    this.owners.set(projection, owner);
    return {
      onLost: () => {},
      release: async () => {
        if (this.owners.get(projection) === owner) this.owners.delete(projection);
      },
    };
  }
}

const locksByReadModel = new WeakMap<InMemoryReadModel, InMemoryProjectionLock>();

function lockFor(readModel: InMemoryReadModel): InMemoryProjectionLock {
  let lock = locksByReadModel.get(readModel);
  if (lock === undefined) {
    lock = new InMemoryProjectionLock();
    locksByReadModel.set(readModel, lock);
  }
  return lock;
}

/** Wakes a runner after each append to an in-memory store (the hook runs just before it commits). */
export function inMemoryWakeUps(store: InMemoryEventStore): WakeUpSource {
  return (listener) => store.addAppendHook(() => queueMicrotask(listener));
}

export interface InMemoryProjectionRunnerOptions extends ProjectionRunnerSettings {
  readonly readModel: InMemoryReadModel;
  /** Where checkpoints live; default: one store per read model target. */
  readonly checkpoints?: InMemoryCheckpointStore;
  /** Where parked events live; default: one store per read model. */
  readonly deadLetters?: InMemoryDeadLetterStore;
  /** Default: a lock shared by every runner of the same read model. */
  readonly lock?: ProjectionLock;
}

/**
 * An async projection into an `InMemoryReadModel`, exactly-once (read model and checkpoint commit
 * together). Any event store can feed it; an `InMemoryEventStore` also wakes it on each append.
 */
export class InMemoryProjectionRunner<E extends AnyEvent> extends ProjectionRunner<E, InMemoryProjectionContext> {
  constructor(store: EventStore, projection: Projection<E, InMemoryProjectionContext>, options: InMemoryProjectionRunnerOptions) {
    const target = new InMemoryProjectionTarget(
      options.readModel,
      options.checkpoints ?? checkpointsFor(options.readModel),
      options.deadLetters ?? deadLettersFor(options.readModel),
    );
    super({
      ...options,
      store,
      projection,
      target,
      lock: options.lock ?? lockFor(options.readModel),
      ...(store instanceof InMemoryEventStore ? { wakeUps: inMemoryWakeUps(store) } : {}),
    });
  }
}

const checkpointsByReadModel = new WeakMap<InMemoryReadModel, InMemoryCheckpointStore>();

/** Checkpoints belong with their read model, so a new runner over the same read model resumes. */
function checkpointsFor(readModel: InMemoryReadModel): InMemoryCheckpointStore {
  let checkpoints = checkpointsByReadModel.get(readModel);
  if (checkpoints === undefined) {
    checkpoints = new InMemoryCheckpointStore();
    checkpointsByReadModel.set(readModel, checkpoints);
  }
  return checkpoints;
}

const deadLettersByReadModel = new WeakMap<InMemoryReadModel, InMemoryDeadLetterStore>();

/** Dead letters belong with their read model too. */
function deadLettersFor(readModel: InMemoryReadModel): InMemoryDeadLetterStore {
  let deadLetters = deadLettersByReadModel.get(readModel);
  if (deadLetters === undefined) {
    deadLetters = new InMemoryDeadLetterStore();
    deadLettersByReadModel.set(readModel, deadLetters);
  }
  return deadLetters;
}

/**
 * Runs `projection` inside every append to `store`: its writes to `readModel` commit with the
 * events, and a throwing handler fails the append with nothing stored. Runs `setup` now.
 * Returns a remover. In memory there is no shared transaction across hooks: if a hook registered
 * after this one throws, the append fails but this projection's writes stay. Register inline
 * projections last, or use one read model per store.
 */
export function addInlineProjection<E extends AnyEvent>(
  store: InMemoryEventStore,
  projection: Projection<E, InMemoryProjectionContext>,
  readModel: InMemoryReadModel,
): () => void {
  const setup = projection.setup;
  if (setup !== undefined) {
    readModel.transaction((tx) => runHookSync(projection.name, 'setup', setup, { readModel: tx }));
  }
  return store.addAppendHook((events) => {
    readModel.transaction((tx) => applyEventsSync(projection, events, { readModel: tx }));
  });
}
