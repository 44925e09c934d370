import type { PoolClient } from 'pg';
import { assertInboxKey, type Inbox, type InboxOutcome } from '../publishing/inbox.js';
import { PgConnection, type PostgresConnectionOptions, type PostgresSchemaOptions } from './connection.js';
import { quoteIdentifier } from './schema-name.js';

export type PostgresInboxOptions = PostgresConnectionOptions & PostgresSchemaOptions;

/**
 * The consumer side of at-least-once delivery on PostgreSQL: `handle` inserts (consumer, message
 * id) into the `inbox` table and runs the message's effect in the same transaction, so a
 * redelivered message — even one delivered twice at the same moment to two consumer processes —
 * commits its effect once: the second insert waits for the first transaction and then finds the
 * row. Pass the pool and schema of the consumer's own read model.
 */
export class PostgresInbox implements Inbox<PoolClient> {
  private readonly connection: PgConnection;
  private readonly table: string;

  constructor(options: PostgresInboxOptions) {
    this.connection = new PgConnection(options, 'PostgreSQL inbox');
    this.table = `${quoteIdentifier(this.connection.schema)}.inbox`;
  }

  /** Creates the schema and the `inbox` table; idempotent. */
  async migrate(): Promise<void> {
    await this.connection.transaction('migrate the inbox table', async (client) => {
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(this.connection.schema)}`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${this.table} (` +
          `consumer text NOT NULL, message_id text NOT NULL, processed_at timestamptz NOT NULL DEFAULT now(), ` +
          `PRIMARY KEY (consumer, message_id))`,
      );
    });
  }

  async handle(consumer: string, messageId: string, work: (client: PoolClient) => unknown): Promise<InboxOutcome> {
    assertInboxKey('consumer', consumer);
    assertInboxKey('message id', messageId);
    return this.connection.transaction(`handle message '${messageId}' for '${consumer}'`, async (client) => {
      const inserted = await client.query({
        text: `INSERT INTO ${this.table} (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
        values: [consumer, messageId],
      });
      if (inserted.rowCount === 0) return 'duplicate';
      await work(client);
      return 'processed';
    });
  }

  /** True when `consumer` has processed `messageId`. */
  async has(consumer: string, messageId: string): Promise<boolean> {
    const result = await this.connection.query<{ one: number }>(
      { text: `SELECT 1 AS one FROM ${this.table} WHERE consumer = $1 AND message_id = $2`, values: [consumer, messageId] },
      'read the inbox',
    );
    return result.rows.length > 0;
  }

  /**
   * Forgets ids processed before `before` and returns how many. Keep them longer than any
   * redelivery can take (the relay's retry window plus the broker's redelivery): a message
   * redelivered after its id was pruned would take effect again.
   */
  async prune(before: Date): Promise<number> {
    const result = await this.connection.query(
      { text: `DELETE FROM ${this.table} WHERE processed_at < $1`, values: [before.toISOString()] },
      'prune the inbox',
      true,
    );
    return result.rowCount ?? 0;
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}
