import type { Pool, PoolClient } from 'pg';
import { InvalidArgumentError, StreamNotFoundError } from '../errors.js';
import { assertReadableStreamId } from '../events/validation.js';
import { PRUNED_EVENT, STREAM_DELETED, type StreamPruning } from '../evolution/lifecycle.js';
import { PgConnection, type PostgresConnectionOptions, type PostgresSchemaOptions } from './connection.js';
import { quoteIdentifier } from './schema-name.js';

/**
 * Physical removal of event payloads from a PostgreSQL event store's schema (see
 * `StreamPruning`): rows become `$Pruned` placeholders, so versions stay contiguous and positions
 * stay taken. `purgeDeletedStream` also removes the stream's snapshots. The old row versions stay
 * in the table's dead tuples until VACUUM (run after pruning), and in WAL archives and backups
 * until those age out.
 */
export class PostgresStreamPruning implements StreamPruning {
  private readonly connection: PgConnection;
  private readonly schema: string;

  constructor(options: PostgresConnectionOptions & PostgresSchemaOptions) {
    this.connection = new PgConnection(options, 'PostgreSQL stream pruning');
    this.schema = quoteIdentifier(this.connection.schema);
  }

  get pool(): Pool {
    return this.connection.pool;
  }

  async purgeDeletedStream(streamId: string): Promise<{ readonly removedEvents: number }> {
    assertReadableStreamId(streamId);
    return this.connection.transaction('purge a deleted stream', async (client) => {
      const last = await client.query<{ version: string; type: string }>(
        `SELECT version, type FROM ${this.schema}.events WHERE stream_id = $1 ORDER BY version DESC LIMIT 1 FOR UPDATE`,
        [streamId],
      );
      const row = last.rows[0];
      if (row === undefined) throw new StreamNotFoundError(streamId);
      if (row.type !== STREAM_DELETED) {
        throw new InvalidArgumentError(`Stream '${streamId}' is not deleted: tombstone it before purging its events.`);
      }
      const removed = await this.prune(client, streamId, Number(row.version));
      await client.query(`DELETE FROM ${this.schema}.snapshots WHERE stream_id = $1`, [streamId]);
      return { removedEvents: removed };
    });
  }

  async truncateBefore(streamId: string, version: number): Promise<{ readonly removedEvents: number }> {
    assertReadableStreamId(streamId);
    if (!Number.isSafeInteger(version) || version < 1) {
      throw new InvalidArgumentError(`truncateBefore takes a version >= 1, got ${String(version)}.`);
    }
    return this.connection.transaction('truncate a stream', async (client) => {
      const current = await client.query<{ version: string | null }>(`SELECT max(version) AS version FROM ${this.schema}.events WHERE stream_id = $1`, [streamId]);
      const at = Number(current.rows[0]?.version ?? 0);
      if (at === 0) throw new StreamNotFoundError(streamId);
      if (version > at) {
        throw new InvalidArgumentError(`Stream '${streamId}' is at version ${at}: truncateBefore(${version}) would remove all of it.`);
      }
      return { removedEvents: await this.prune(client, streamId, version) };
    });
  }

  private async prune(client: PoolClient, streamId: string, version: number): Promise<number> {
    const result = await client.query(
      `UPDATE ${this.schema}.events SET type = $3, data = 'null'::json, metadata = '{}'::json
       WHERE stream_id = $1 AND version < $2 AND type <> $3`,
      [streamId, version, PRUNED_EVENT],
    );
    return result.rowCount ?? 0;
  }

  close(): Promise<void> {
    return this.connection.close();
  }
}
