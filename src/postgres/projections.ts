import pg from 'pg';
import type { ClientBase, Pool, PoolClient } from 'pg';
import type { AnyEvent } from '../events/types.js';
import type { CheckpointStore } from '../projections/checkpoint-store.js';
import { CheckpointConflictError } from '../projections/errors.js';
import { applyEventsAsync, assertValidProjectionName, type MaybePromise, type Projection } from '../projections/projection.js';
import { ProjectionRunner, type ProjectionRunnerSettings } from '../projections/runner.js';
import type { Checkpoint, ProjectionLease, ProjectionLock, ProjectionTarget, WakeUpSource } from '../projections/target.js';
import { translateMethodErrors } from '../store/translate-errors.js';
import { translatePgError } from './pg-errors.js';
import type { PostgresEventStore } from './postgres-event-store.js';
import { assertValidSchemaName, LOCK_CLASS, quoteIdentifier, schemaLockKey } from './schema-name.js';

/** What PostgreSQL projection handlers get: the batch's (or the append's) transaction client. */
export interface PostgresProjectionContext {
  readonly client: PoolClient;
}

/** DDL of the checkpoint table, in the store's schema. Idempotent. */
export function projectionCheckpointsDdl(schema: string): string {
  assertValidSchemaName(schema);
  return `CREATE TABLE IF NOT EXISTS ${quoteIdentifier(schema)}.projection_checkpoints (
  name       text        PRIMARY KEY,
  position   bigint      NOT NULL,
  version    integer     NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
)`;
}

/**
 * Checkpoints in `<schema>.projection_checkpoints`. `compareAndSetIn` runs on a caller's
 * transaction client, which is how a runner commits read model and checkpoint together.
 */
export class PostgresCheckpointStore implements CheckpointStore {
  private readonly table: string;
  private migrated = false;

  constructor(
    private readonly pool: Pool,
    readonly schema: string,
  ) {
    assertValidSchemaName(schema);
    this.table = `${quoteIdentifier(schema)}.projection_checkpoints`;
  }

  /** Creates the table if needed; concurrent calls are serialised with the store's own migrate(). */
  async migrate(): Promise<void> {
    if (this.migrated) return;
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS.migrate, schemaLockKey(this.schema)]);
      await client.query(projectionCheckpointsDdl(this.schema));
      await client.query('COMMIT');
      this.migrated = true;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async loadWith(client: Pick<ClientBase, 'query'>, projection: string): Promise<Checkpoint | undefined> {
    const result = await client.query<{ position: number; version: number }>(
      `SELECT position::float8 AS position, version FROM ${this.table} WHERE name = $1`,
      [projection],
    );
    const row = result.rows[0];
    return row === undefined ? undefined : { position: row.position, version: row.version };
  }

  /** Moves the checkpoint from `expected` to `next` on `client`'s transaction; row-locks it until commit. */
  async compareAndSetIn(client: ClientBase, projection: string, expected: Checkpoint | undefined, next: Checkpoint): Promise<void> {
    const result =
      expected === undefined
        ? await client.query(
            `INSERT INTO ${this.table} (name, position, version) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING`,
            [projection, next.position, next.version],
          )
        : await client.query(
            `UPDATE ${this.table} SET position = $2, version = $3, updated_at = now()
             WHERE name = $1 AND position = $4 AND version = $5`,
            [projection, next.position, next.version, expected.position, expected.version],
          );
    if (result.rowCount !== 1) {
      throw new CheckpointConflictError(projection, expected, await this.loadWith(client, projection));
    }
  }

  async load(projection: string): Promise<Checkpoint | undefined> {
    assertValidProjectionName(projection);
    await this.migrate();
    return this.loadWith(this.pool, projection);
  }

  async save(projection: string, expected: Checkpoint | undefined, next: Checkpoint): Promise<void> {
    assertValidProjectionName(projection);
    await this.migrate();
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await this.compareAndSetIn(client, projection, expected, next);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async delete(projection: string): Promise<void> {
    await this.migrate();
    await this.pool.query(`DELETE FROM ${this.table} WHERE name = $1`, [projection]);
  }
}

// Driver failures of every public method surface as typed eventfold errors (see translatePgError).
translateMethodErrors(
  PostgresCheckpointStore,
  {
    migrate: 'create the checkpoint table',
    load: 'load a checkpoint',
    loadWith: 'load a checkpoint',
    compareAndSetIn: 'save a checkpoint',
    save: 'save a checkpoint',
    delete: 'delete a checkpoint',
  },
  (error, store, action) => translatePgError(error, action, store.schema, action !== 'load a checkpoint'),
);

/**
 * The read model in the event store's database: each batch's handlers and the checkpoint run in
 * one transaction (`store.withTransaction`), so the effect is exactly-once.
 */
export class PostgresProjectionTarget implements ProjectionTarget<PostgresProjectionContext> {
  readonly delivery = 'exactly-once' as const;
  readonly synchronous = false;
  readonly checkpoints: PostgresCheckpointStore;

  constructor(readonly store: PostgresEventStore) {
    this.checkpoints = new PostgresCheckpointStore(store.pool, store.schema);
  }

  prepare(): Promise<void> {
    return this.checkpoints.migrate();
  }

  readCheckpoint(projection: string): Promise<Checkpoint | undefined> {
    return this.checkpoints.loadWith(this.store.pool, projection);
  }

  commit(
    projection: string,
    expected: Checkpoint | undefined,
    next: Checkpoint | undefined,
    work: (ctx: PostgresProjectionContext) => MaybePromise<void>,
  ): Promise<void> {
    return this.store.withTransaction(async (client) => {
      // Checkpoint first: its row lock makes a competing runner's batch wait, then fail the check.
      if (next !== undefined) await this.checkpoints.compareAndSetIn(client, projection, expected, next);
      await work({ client });
    });
  }
}

/** A connection of its own (not from the pool): it lives as long as a lock or a LISTEN does. */
async function openDedicatedClient(pool: Pool): Promise<pg.Client> {
  const client = new pg.Client({ ...pool.options, application_name: 'eventfold-projection' });
  // Until a lease or listener attaches its own, an 'error' event must not crash the process.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
  return client;
}

/**
 * One runner per projection across processes: a session-level advisory lock, held on a dedicated
 * connection for as long as the runner runs. The key is a 64-bit hash of schema and projection
 * name (`hashtextextended`). If the connection drops, PostgreSQL releases the lock and the runner
 * is told it lost it; a crashed process's lock goes with its connection, so a waiting runner takes
 * over at once.
 */
export class PostgresProjectionLock implements ProjectionLock {
  constructor(
    private readonly pool: Pool,
    private readonly schema: string,
  ) {
    assertValidSchemaName(schema);
  }

  lockKey(projection: string): string {
    return `eventfold.projection:${this.schema}.${projection}`;
  }

  async tryAcquire(projection: string): Promise<ProjectionLease | undefined> {
    const client = await openDedicatedClient(this.pool);
    const key = this.lockKey(projection);
    let acquired = false;
    try {
      const result = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked', [key]);
      acquired = result.rows[0]?.locked === true;
    } finally {
      if (!acquired) await client.end().catch(() => undefined);
    }
    if (!acquired) return undefined;

    let released = false;
    let lostListener: ((reason: string, cause?: unknown) => void) | undefined;
    let lostReason: { reason: string; cause?: unknown } | undefined;
    const lose = (reason: string, cause?: unknown): void => {
      if (released || lostReason !== undefined) return;
      lostReason = { reason, cause };
      lostListener?.(reason, cause);
    };
    client.on('error', (error) => lose('its database connection failed', error));
    client.on('end', () => lose('its database connection ended'));
    return {
      onLost: (listener) => {
        lostListener = listener;
        if (lostReason !== undefined) listener(lostReason.reason, lostReason.cause);
      },
      release: async () => {
        if (released) return;
        released = true;
        try {
          if (lostReason === undefined) await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]);
        } finally {
          // Ending the session releases the lock in any case.
          await client.end().catch(() => undefined);
        }
      },
    };
  }
}

/**
 * Wakes a runner on every append: LISTEN on the store's channel (`eventfold_<schema>`), on a
 * dedicated connection. If that connection drops, the runner still finds events by polling.
 */
export function postgresWakeUps(store: PostgresEventStore): WakeUpSource {
  return async (listener) => {
    const client = await openDedicatedClient(store.pool);
    client.on('notification', () => listener());
    await client.query(`LISTEN ${quoteIdentifier(store.notifyChannel)}`);
    return async () => {
      await client.end().catch(() => undefined);
    };
  };
}

export type PostgresProjectionRunnerOptions = ProjectionRunnerSettings;

/**
 * An async projection from a `PostgresEventStore` into tables of the same database, exactly-once:
 * each batch's read-model writes and checkpoint commit in one transaction. Woken by NOTIFY, with
 * polling (`pollIntervalMs`) as the fallback. Holds two dedicated connections while it runs (the
 * advisory lock and LISTEN) besides the pooled one it borrows per batch.
 */
export class PostgresProjectionRunner<E extends AnyEvent> extends ProjectionRunner<E, PostgresProjectionContext> {
  constructor(store: PostgresEventStore, projection: Projection<E, PostgresProjectionContext>, options: PostgresProjectionRunnerOptions = {}) {
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
