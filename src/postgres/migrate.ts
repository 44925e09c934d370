import type { PoolClient, QueryConfig } from 'pg';
import { UnsupportedSchemaVersionError } from '../errors.js';
import { POSTGRES_SCHEMA_VERSION, postgresSchemaSql } from './ddl.js';
import { LOCK_CLASS, quoteIdentifier, schemaLockKey } from './schema-name.js';
import { LONG_QUERY_TIMEOUT_MS } from './connection.js';

/**
 * Runs the DDL on a client inside a transaction the caller opened. The advisory lock makes
 * concurrent migrations of one schema wait for each other instead of racing on CREATE … IF NOT
 * EXISTS (which is not safe against concurrent creators).
 */
export async function migrateSchema(client: PoolClient, schema: string): Promise<void> {
  const ddl = postgresSchemaSql(schema);
  // Waiting for another process's migration, and the DDL itself, may take longer than the pool's
  // query_timeout allows an ordinary statement.
  await client.query(longQuery('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS.migrate, schemaLockKey(schema)]));
  const existing = await client.query<{ version: number | null }>(
    `SELECT CASE WHEN to_regclass($1) IS NULL THEN NULL ELSE 0 END AS version`,
    [`${quoteIdentifier(schema)}.eventfold_schema`],
  );
  if (existing.rows[0]?.version !== null) {
    const found = await client.query<{ version: number }>(
      `SELECT coalesce(max(version), 0)::int AS version FROM ${quoteIdentifier(schema)}.eventfold_schema`,
    );
    const version = found.rows[0]?.version ?? 0;
    if (version > POSTGRES_SCHEMA_VERSION) {
      throw new UnsupportedSchemaVersionError('events', version, POSTGRES_SCHEMA_VERSION, `PostgreSQL schema '${schema}'`);
    }
  }
  await client.query(longQuery(ddl));
}

/** A statement exempt from the pool's `query_timeout` (pg reads `query_timeout` per query too). */
export function longQuery(text: string, values?: unknown[]): QueryConfig {
  return { text, ...(values === undefined ? {} : { values }), query_timeout: LONG_QUERY_TIMEOUT_MS } as QueryConfig;
}
