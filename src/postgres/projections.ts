import type { PoolClient } from 'pg';
import type { AnyEvent } from '../events/types.js';
import type { DeadLetterWrite } from '../projections/dead-letters.js';
import { applyEventsAsync, type MaybePromise, type Projection } from '../projections/projection.js';
import { ProjectionRunner, type ProjectionRunnerSettings } from '../projections/runner.js';
import type { Checkpoint, ProjectionTarget } from '../projections/target.js';
import type { StoredRunnerError } from '../projections/runner-error.js';
import { guardPool } from './connection.js';
import { translatePgError } from './pg-errors.js';
import { classifyPgError } from './pg-transient.js';
import { PostgresCheckpointStore } from './projection-checkpoints.js';
import { PostgresDeadLetterStore } from './projection-dead-letters.js';
import { PostgresProjectionLock, postgresWakeUps } from './projection-lock.js';
import type { PostgresEventStore } from './postgres-event-store.js';

export { migrateProjectionTables, PostgresCheckpointStore, projectionCheckpointsDdl, projectionDeadLettersDdl } from './projection-checkpoints.js';
export { projectionErrorsDdl } from './projection-errors.js';
export { PostgresDeadLetterStore } from './projection-dead-letters.js';
export { PostgresProjectionLock, postgresWakeUps } from './projection-lock.js';
export { classifyPgError } from './pg-transient.js';

/** What PostgreSQL projection handlers get: the batch's (or the append's) transaction client. */
export interface PostgresProjectionContext {
  readonly client: PoolClient;
}

/**
 * The read model in the event store's database: each batch's handlers, the checkpoint and any
 * dead letter run in one transaction (`store.withTransaction`), so the effect is exactly-once.
 */
export class PostgresProjectionTarget implements ProjectionTarget<PostgresProjectionContext> {
  readonly delivery = 'exactly-once' as const;
  readonly synchronous = false;
  readonly checkpoints: PostgresCheckpointStore;
  readonly deadLetters: PostgresDeadLetterStore;
  readonly classifyError = classifyPgError;

  constructor(readonly store: PostgresEventStore) {
    this.checkpoints = new PostgresCheckpointStore(store.pool, store.schema);
    this.deadLetters = new PostgresDeadLetterStore(store.pool, store.schema);
  }

  prepare(): Promise<void> {
    return this.checkpoints.migrate();
  }

  recordError(projection: string, error: StoredRunnerError | undefined): Promise<void> {
    return this.checkpoints.saveError(projection, error);
  }

  readError(projection: string): Promise<StoredRunnerError | undefined> {
    return this.checkpoints.loadError(projection);
  }

  async readCheckpoint(projection: string): Promise<Checkpoint | undefined> {
    try {
      return await this.checkpoints.loadWith(this.store.pool, projection);
    } catch (error) {
      throw translatePgError(error, 'read a projection checkpoint', this.store.schema);
    }
  }

  commit(
    projection: string,
    expected: Checkpoint | undefined,
    next: Checkpoint | undefined,
    work: (ctx: PostgresProjectionContext) => MaybePromise<void>,
    deadLetter?: DeadLetterWrite,
  ): Promise<void> {
    return this.store.withTransaction(async (client) => {
      // Checkpoint first: its row lock makes a competing runner's batch wait, then fail the check.
      if (next !== undefined) await this.checkpoints.compareAndSetIn(client, projection, expected, next);
      await work({ client });
      if (deadLetter !== undefined) await this.deadLetters.writeIn(client, projection, deadLetter);
    });
  }
}

export type PostgresProjectionRunnerOptions = ProjectionRunnerSettings;

/**
 * An async projection from a `PostgresEventStore` into tables of the same database, exactly-once:
 * each batch's read-model writes and checkpoint commit in one transaction. Woken by NOTIFY, with
 * polling (`pollIntervalMs`) as the fallback. Holds two dedicated connections while it runs (the
 * advisory lock and LISTEN) besides the pooled one it borrows per batch. Survives dropped
 * connections and server restarts: it retries, takes its lock again and resumes from its checkpoint.
 */
export class PostgresProjectionRunner<E extends AnyEvent> extends ProjectionRunner<E, PostgresProjectionContext> {
  constructor(store: PostgresEventStore, projection: Projection<E, PostgresProjectionContext>, options: PostgresProjectionRunnerOptions = {}) {
    // The store guards its pool already; this covers a pool handed to the store before it did.
    guardPool(store.pool, options.logger);
    super({
      ...options,
      store,
      projection,
      target: new PostgresProjectionTarget(store),
      lock: new PostgresProjectionLock(store.pool, store.schema),
      wakeUps: postgresWakeUps(store),
    });
  }
}

/**
 * Runs `projection` inside every append to `store`, on the append's transaction: read model and
 * events commit together, and a failing handler fails the append with nothing written. Runs
 * `setup` first (in its own transaction). Resolves to a remover.
 */
export async function addInlinePostgresProjection<E extends AnyEvent>(
  store: PostgresEventStore,
  projection: Projection<E, PostgresProjectionContext>,
): Promise<() => void> {
  const setup = projection.setup;
  if (setup !== undefined) await store.withTransaction(async (client) => setup({ client }));
  return store.addAppendHook((events, client) => applyEventsAsync(projection, events, { client }));
}
