import type { ClientBase, Pool, QueryResult } from 'pg';
import type { CheckpointStore, StoredCheckpoint } from '../projections/checkpoint-store.js';
import { CheckpointConflictError } from '../projections/errors.js';
import { assertValidProjectionName } from '../projections/projection.js';
import type { Checkpoint } from '../projections/target.js';
import { guardPool, withPooledClient } from './connection.js';
import { longQuery } from './migrate.js';
import { isQueryTimeout, translatePgError } from './pg-errors.js';
import { assertValidSchemaName, LOCK_CLASS, quoteIdentifier, schemaLockKey } from './schema-name.js';
import type { Logger } from '../logging.js';
import type { StoredRunnerError } from '../projections/runner-error.js';
import { projectionErrorsDdl, readRunnerError, writeRunnerError } from './projection-errors.js';

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

/** DDL of the dead-letter table (parked poison events), in the store's schema. Idempotent. */
export function projectionDeadLettersDdl(schema: string): string {
  assertValidSchemaName(schema);
  return `CREATE TABLE IF NOT EXISTS ${quoteIdentifier(schema)}.projection_dead_letters (
  projection      text        NOT NULL,
  position        bigint      NOT NULL,
  event_id        text        NOT NULL,
  event_type      text        NOT NULL,
  stream_id       text        NOT NULL,
  stream_version  bigint      NOT NULL,
  error           text        NOT NULL,
  attempts        integer     NOT NULL,
  parked_at       timestamptz NOT NULL DEFAULT now(),
  retry_requested boolean     NOT NULL DEFAULT false,
  PRIMARY KEY (projection, position)
)`;
}

const migratedSchemas = new WeakMap<Pool, Set<string>>();

/**
 * Creates the checkpoint and dead-letter tables if needed, on a guarded pooled client; concurrent
 * calls are serialised with the store's own migrate(). Errors come back translated.
 */
export async function migrateProjectionTables(pool: Pool, schema: string): Promise<void> {
  if (migratedSchemas.get(pool)?.has(schema) === true) return;
  try {
    await withPooledClient(pool, async (client) => {
      await client.query('BEGIN');
      try {
        await client.query(longQuery('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS.migrate, schemaLockKey(schema)]));
        await client.query(longQuery(projectionCheckpointsDdl(schema)));
        await client.query(longQuery(projectionDeadLettersDdl(schema)));
        await client.query(longQuery(projectionErrorsDdl(schema)));
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    });
  } catch (error) {
    throw translatePgError(error, 'create the projection tables', schema, true);
  }
  let schemas = migratedSchemas.get(pool);
  if (schemas === undefined) {
    schemas = new Set();
    migratedSchemas.set(pool, schemas);
  }
  schemas.add(schema);
}

/**
 * Checkpoints in `<schema>.projection_checkpoints`. `compareAndSetIn` runs on a caller's
 * transaction client, which is how a runner commits read model and checkpoint together.
 */
export class PostgresCheckpointStore implements CheckpointStore {
  private readonly table: string;

  constructor(
    private readonly pool: Pool,
    readonly schema: string,
    options: { readonly logger?: Logger } = {},
  ) {
    assertValidSchemaName(schema);
    this.table = `${quoteIdentifier(schema)}.projection_checkpoints`;
    guardPool(pool, options.logger);
  }

  /** Creates the checkpoint and dead-letter tables if needed (idempotent). */
  migrate(): Promise<void> {
    return migrateProjectionTables(this.pool, this.schema);
  }

  async loadWith(client: Pick<ClientBase, 'query'>, projection: string): Promise<Checkpoint | undefined> {
    let result: QueryResult<{ position: number; version: number }>;
    try {
      result = await client.query<{ position: number; version: number }>(
        `SELECT position::float8 AS position, version FROM ${this.table} WHERE name = $1`,
        [projection],
      );
    } catch (error) {
      throw translatePgError(error, 'read a projection checkpoint', this.schema);
    }
    const row = result.rows[0];
    return row === undefined ? undefined : { position: row.position, version: row.version };
  }

  /** Moves the checkpoint from `expected` to `next` on `client`'s transaction; row-locks it until commit. */
  async compareAndSetIn(client: ClientBase, projection: string, expected: Checkpoint | undefined, next: Checkpoint): Promise<void> {
    let result: QueryResult;
    try {
      result =
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
    } catch (error) {
      throw translatePgError(error, 'save a projection checkpoint', this.schema, true);
    }
    if (result.rowCount !== 1) {
      throw new CheckpointConflictError(projection, expected, await this.loadWith(client, projection));
    }
  }

  async load(projection: string): Promise<Checkpoint | undefined> {
    assertValidProjectionName(projection);
    await this.migrate();
    try {
      return await this.loadWith(this.pool, projection);
    } catch (error) {
      throw translatePgError(error, 'read a projection checkpoint', this.schema);
    }
  }

  async save(projection: string, expected: Checkpoint | undefined, next: Checkpoint): Promise<void> {
    assertValidProjectionName(projection);
    await this.migrate();
    try {
      await withPooledClient(this.pool, async (client) => {
        await client.query('BEGIN');
        try {
          await this.compareAndSetIn(client, projection, expected, next);
          await client.query('COMMIT');
        } catch (error) {
          // After a query timeout ROLLBACK would only wait behind the unanswered statement; the
          // connection is destroyed instead (withPooledClient), which rolls back on the server.
          if (!isQueryTimeout(error)) await client.query('ROLLBACK').catch(() => undefined);
          throw error;
        }
      });
    } catch (error) {
      throw translatePgError(error, 'save a projection checkpoint', this.schema, true);
    }
  }

  async list(): Promise<StoredCheckpoint[]> {
    await this.migrate();
    try {
      const result = await this.pool.query<{ name: string; position: number; version: number }>(
        `SELECT name, position::float8 AS position, version FROM ${this.table} ORDER BY name`,
      );
      return result.rows.map((r) => Object.freeze({ projection: r.name, position: r.position, version: r.version }));
    } catch (error) {
      throw translatePgError(error, 'list projection checkpoints', this.schema);
    }
  }

  async delete(projection: string): Promise<void> {
    await this.migrate();
    try {
      await this.pool.query(`DELETE FROM ${this.table} WHERE name = $1`, [projection]);
    } catch (error) {
      throw translatePgError(error, 'delete a projection checkpoint', this.schema, true);
    }
    await writeRunnerError(this.pool, this.schema, projection, undefined);
  }

  async saveError(projection: string, error: StoredRunnerError | undefined): Promise<void> {
    assertValidProjectionName(projection);
    await this.migrate();
    await writeRunnerError(this.pool, this.schema, projection, error);
  }

  async loadError(projection: string): Promise<StoredRunnerError | undefined> {
    assertValidProjectionName(projection);
    await this.migrate();
    return readRunnerError(this.pool, this.schema, projection);
  }
}
