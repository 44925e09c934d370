import type { ClientBase, Pool } from 'pg';
import type { Logger } from '../logging.js';
import {
  assertValidPosition,
  deadLetterFromRow,
  resolveListOptions,
  type DeadLetter,
  type DeadLetterRow,
  type DeadLetterListOptions,
  type StandaloneDeadLetterStore,
  type DeadLetterWrite,
} from '../projections/dead-letters.js';
import { assertValidProjectionName } from '../projections/projection.js';
import { guardPool } from './connection.js';
import { translatePgError } from './pg-errors.js';
import { migrateProjectionTables } from './projection-checkpoints.js';
import { assertValidSchemaName, quoteIdentifier } from './schema-name.js';

const COLUMNS =
  'projection, position::float8 AS position, event_id, event_type, stream_id, stream_version::float8 AS stream_version, ' +
  'error, attempts, parked_at, retry_requested';

/**
 * Parked events in `<schema>.projection_dead_letters`, keyed by projection and position. The
 * runner writes them with `writeIn` on the batch's transaction, so a letter and the checkpoint
 * that moved past its event commit together.
 */
export class PostgresDeadLetterStore implements StandaloneDeadLetterStore {
  private readonly table: string;

  constructor(
    private readonly pool: Pool,
    readonly schema: string,
    options: { readonly logger?: Logger } = {},
  ) {
    assertValidSchemaName(schema);
    this.table = `${quoteIdentifier(schema)}.projection_dead_letters`;
    guardPool(pool, options.logger);
  }

  async list(projection: string, options?: DeadLetterListOptions): Promise<DeadLetter[]> {
    const { limit, after } = resolveListOptions(projection, options);
    const rows = await this.query<DeadLetterRow>(
      `SELECT ${COLUMNS} FROM ${this.table} WHERE projection = $1 AND position > $2 ORDER BY position LIMIT $3`,
      [projection, after, limit],
      'list dead letters',
    );
    return rows.map(deadLetterFromRow);
  }

  async count(projection: string): Promise<number> {
    assertValidProjectionName(projection);
    const rows = await this.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${this.table} WHERE projection = $1`, [projection], 'count dead letters');
    return rows[0]?.n ?? 0;
  }

  async retry(projection: string, position: number): Promise<boolean> {
    assertValidProjectionName(projection);
    assertValidPosition(position);
    const rows = await this.query(
      `UPDATE ${this.table} SET retry_requested = true WHERE projection = $1 AND position = $2 RETURNING 1`,
      [projection, position],
      'request a dead letter retry',
    );
    return rows.length === 1;
  }

  async discard(projection: string, position: number): Promise<boolean> {
    assertValidProjectionName(projection);
    assertValidPosition(position);
    const rows = await this.query(`DELETE FROM ${this.table} WHERE projection = $1 AND position = $2 RETURNING 1`, [projection, position], 'discard a dead letter');
    return rows.length === 1;
  }

  async retryRequested(projection: string, limit: number): Promise<DeadLetter[]> {
    const rows = await this.query<DeadLetterRow>(
      `SELECT ${COLUMNS} FROM ${this.table} WHERE projection = $1 AND retry_requested ORDER BY position LIMIT $2`,
      [projection, limit],
      'read dead letter retry requests',
    );
    return rows.map(deadLetterFromRow);
  }

  /** Writes a change on its own (subscriptions and relays, whose checkpoint is saved after it). */
  async write(projection: string, write: DeadLetterWrite): Promise<void> {
    assertValidProjectionName(projection);
    await migrateProjectionTables(this.pool, this.schema);
    try {
      // One statement per kind: the pool runs it on any connection, in its own transaction.
      await this.writeIn(this.pool as unknown as ClientBase, projection, write);
    } catch (error) {
      throw translatePgError(error, 'write a dead letter', this.schema, true);
    }
  }

  /** Writes a runner's change on `client`'s transaction. */
  async writeIn(client: ClientBase, projection: string, write: DeadLetterWrite): Promise<void> {
    switch (write.kind) {
      case 'park': {
        const l = write.letter;
        await client.query(
          `INSERT INTO ${this.table} (projection, position, event_id, event_type, stream_id, stream_version, error, attempts, parked_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (projection, position) DO UPDATE SET error = EXCLUDED.error, attempts = EXCLUDED.attempts,
             parked_at = EXCLUDED.parked_at, retry_requested = false`,
          [projection, l.position, l.eventId, l.eventType, l.streamId, l.streamVersion, l.error, l.attempts, l.parkedAt],
        );
        return;
      }
      case 'resolve':
        await client.query(`DELETE FROM ${this.table} WHERE projection = $1 AND position = $2`, [projection, write.position]);
        return;
      case 'retry-failed':
        await client.query(
          `UPDATE ${this.table} SET error = $3, attempts = attempts + 1, retry_requested = false WHERE projection = $1 AND position = $2`,
          [projection, write.position, write.error],
        );
        return;
      case 'clear':
        await client.query(`DELETE FROM ${this.table} WHERE projection = $1`, [projection]);
        return;
    }
  }

  private async query<R extends object>(text: string, values: unknown[], action: string): Promise<R[]> {
    await migrateProjectionTables(this.pool, this.schema);
    try {
      return (await this.pool.query<R & import('pg').QueryResultRow>(text, values)).rows;
    } catch (error) {
      throw translatePgError(error, action, this.schema, true);
    }
  }
}
