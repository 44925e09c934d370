import type { Pool } from 'pg';
import { SubjectForgottenError } from '../privacy/errors.js';
import { assertValidSubjectId, isPossibleSubjectId, newDataKey, type KeyStore, type SubjectKey } from '../privacy/key-store.js';
import { PgConnection, type PostgresConnectionOptions, type PostgresSchemaOptions } from './connection.js';
import { quoteIdentifier } from './schema-name.js';

export type PostgresKeyStoreOptions = PostgresConnectionOptions & PostgresSchemaOptions;

/**
 * Data keys for crypto-shredding in `<schema>.subject_keys`. Put the table in another database or
 * schema (with its own backups and grants) when the events' readers must not reach the keys.
 *
 * `forget` drops the key (the row stays, marked forgotten) and VACUUMs the table afterwards so the dead row
 * versions that still held the key are cleaned; run with a role allowed to VACUUM it. WAL segments
 * and base backups made before `forget` still hold the key until they age out: keep their
 * retention within what your deletion deadline allows.
 */
export class PostgresKeyStore implements KeyStore {
  private readonly connection: PgConnection;
  private readonly table: string;

  constructor(options: PostgresKeyStoreOptions) {
    this.connection = new PgConnection(options, 'PostgreSQL key store');
    this.table = `${quoteIdentifier(this.connection.schema)}.subject_keys`;
  }

  static async create(options: PostgresKeyStoreOptions): Promise<PostgresKeyStore> {
    const store = new PostgresKeyStore(options);
    try {
      await store.migrate();
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  get pool(): Pool {
    return this.connection.pool;
  }

  async migrate(): Promise<void> {
    await this.connection.query(
      {
        text: `CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(this.connection.schema)};
        CREATE TABLE IF NOT EXISTS ${this.table} (
          subject_id   text PRIMARY KEY,
          key          bytea,
          created_at   timestamptz NOT NULL DEFAULT now(),
          forgotten_at timestamptz,
          CHECK ((key IS NULL) = (forgotten_at IS NOT NULL))
        )`,
      },
      'create the key table',
      true,
    );
  }

  async keyFor(subjectId: string): Promise<Buffer> {
    assertValidSubjectId(subjectId);
    await this.connection.query(
      { text: `INSERT INTO ${this.table} (subject_id, key) VALUES ($1, $2) ON CONFLICT (subject_id) DO NOTHING`, values: [subjectId, newDataKey()] },
      'create a data key',
      true,
    );
    const result = await this.connection.query<{ key: Buffer | null }>(
      { text: `SELECT key FROM ${this.table} WHERE subject_id = $1`, values: [subjectId] },
      'read a data key',
    );
    const key = result.rows[0]?.key ?? null;
    if (key === null) throw new SubjectForgottenError(subjectId);
    return key;
  }

  async lookup(subjectIds: readonly string[]): Promise<ReadonlyMap<string, SubjectKey>> {
    const found = new Map<string, SubjectKey>();
    // Sent as UTF-8: an ill-formed id would find another subject's row.
    const ids = subjectIds.filter(isPossibleSubjectId);
    if (ids.length === 0) return found;
    const result = await this.connection.query<{ subject_id: string; key: Buffer | null; forgotten_at: Date | null }>(
      { text: `SELECT subject_id, key, forgotten_at FROM ${this.table} WHERE subject_id = ANY($1::text[])`, values: [ids] },
      'read data keys',
    );
    for (const row of result.rows) {
      found.set(row.subject_id, row.key === null ? { status: 'forgotten', forgottenAt: row.forgotten_at ?? new Date(0) } : { status: 'active', key: row.key });
    }
    return found;
  }

  async forget(subjectId: string): Promise<void> {
    assertValidSubjectId(subjectId);
    await this.connection.transaction('forget a data subject', async (client) => {
      await client.query(
        `INSERT INTO ${this.table} (subject_id, key, forgotten_at) VALUES ($1, NULL, now()) ON CONFLICT (subject_id) DO NOTHING`,
        [subjectId],
      );
      await client.query(`UPDATE ${this.table} SET key = NULL, forgotten_at = now() WHERE subject_id = $1 AND key IS NOT NULL`, [subjectId]);
    });
    // Outside the transaction (VACUUM cannot run in one). Best effort: the key is already unreachable.
    try {
      await this.connection.query({ text: `VACUUM ${this.table}` }, 'vacuum the key table', true);
    } catch {
      // A role without VACUUM rights still forgot the key; autovacuum cleans the dead row later.
    }
  }

  close(): Promise<void> {
    return this.connection.close();
  }
}
