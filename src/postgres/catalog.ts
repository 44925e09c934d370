import {
  checkpointSummaryFromRow,
  resolveListStreamsOptions,
  streamSummaryFromRow,
  type CheckpointSummary,
  type CheckpointSummaryRow,
  type EventStoreCatalog,
  type ListStreamsOptions,
  type StreamSummary,
  type StreamSummaryRow,
} from '../store/catalog.js';
import type { PostgresEventStore } from './postgres-event-store.js';
import type { StoredRunnerError } from '../projections/runner-error.js';
import { PostgresDeadLetterStore } from './projection-dead-letters.js';
import { listRunnerErrors } from './projection-errors.js';
import { PostgresProjectionLock } from './projections.js';
import { quoteIdentifier } from './schema-name.js';

/**
 * Read-only queries over a PostgreSQL store's schema for tools: the streams it holds and the
 * projections' checkpoints and locks. Not part of the `EventStore` port.
 */
export class PostgresCatalog implements EventStoreCatalog {
  private readonly schema: string;

  constructor(private readonly store: PostgresEventStore) {
    this.schema = quoteIdentifier(store.schema);
  }

  async listStreams(options?: ListStreamsOptions): Promise<StreamSummary[]> {
    const { prefix, after, limit } = resolveListStreamsOptions(options);
    // COLLATE "C" gives code point order whatever the database's collation, matching SQLite.
    const { rows } = await this.store.pool.query<StreamSummaryRow>(
      `SELECT s.stream_id, e.version::float8 AS version, e.position::float8 AS position, e.recorded_at
         FROM ${this.schema}.streams s
         CROSS JOIN LATERAL (
           SELECT version, position, recorded_at FROM ${this.schema}.events
            WHERE stream_id = s.stream_id ORDER BY version DESC LIMIT 1
         ) e
        WHERE ($1::text IS NULL OR s.stream_id COLLATE "C" > $1::text)
          AND left(s.stream_id, length($2::text)) = $2::text
        ORDER BY s.stream_id COLLATE "C"
        LIMIT $3`,
      [after ?? null, prefix, limit],
    );
    return rows.map(streamSummaryFromRow);
  }

  /** Every stored projection checkpoint, by name. Empty when no projection ever ran here. */
  async listCheckpoints(): Promise<CheckpointSummary[]> {
    const exists = await this.store.pool.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [
      `${this.schema}.projection_checkpoints`,
    ]);
    if (exists.rows[0]?.found !== true) return [];
    const { rows } = await this.store.pool.query<CheckpointSummaryRow>(
      `SELECT name, position::float8 AS position, version, updated_at FROM ${this.schema}.projection_checkpoints ORDER BY name COLLATE "C"`,
    );
    return rows.map(checkpointSummaryFromRow);
  }

  /** The runners' last faults by projection (empty for a schema that predates them). */
  listErrors(): Promise<Map<string, StoredRunnerError>> {
    return listRunnerErrors(this.store.pool, this.store.schema);
  }

  /**
   * Whether a runner holds the projection's advisory lock now (`PostgresProjectionLock`), and
   * its backend pid. A 64-bit advisory key shows in pg_locks as classid (high half), objid (low
   * half) and objsubid 1.
   */
  async lockHolder(projection: string): Promise<string | undefined> {
    const key = new PostgresProjectionLock(this.store.pool, this.store.schema).lockKey(projection);
    const { rows } = await this.store.pool.query<{ pid: number }>(
      `WITH k AS (SELECT hashtextextended($1, 0) AS key)
       SELECT l.pid FROM pg_locks l, k
        WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid::bigint = ((k.key >> 32) & 4294967295)
          AND l.objid::bigint = (k.key & 4294967295)
        LIMIT 1`,
      [key],
    );
    const row = rows[0];
    return row === undefined ? undefined : `backend pid ${row.pid}`;
  }

  /** The schema's dead-letter store, or undefined when its table does not exist yet. */
  async deadLetters(): Promise<PostgresDeadLetterStore | undefined> {
    const exists = await this.store.pool.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [
      `${this.schema}.projection_dead_letters`,
    ]);
    return exists.rows[0]?.found === true ? new PostgresDeadLetterStore(this.store.pool, this.store.schema) : undefined;
  }
}
