import type { Pool } from 'pg';
import { parseStoredRunnerError, type StoredRunnerError } from '../projections/runner-error.js';
import { translatePgError } from './pg-errors.js';
import { assertValidSchemaName, quoteIdentifier } from './schema-name.js';

/** DDL of the runners' last-fault table, in the store's schema. Idempotent (added after the checkpoint table; older schemas get it on their next migrate). */
export function projectionErrorsDdl(schema: string): string {
  assertValidSchemaName(schema);
  return `CREATE TABLE IF NOT EXISTS ${quoteIdentifier(schema)}.projection_errors (
  name     text        PRIMARY KEY,
  message  text        NOT NULL,
  code     text,
  at       timestamptz NOT NULL,
  attempts integer     NOT NULL,
  state    text        NOT NULL
)`;
}

interface ErrorRow {
  name: string;
  message: string;
  code: string | null;
  at: Date;
  attempts: number;
  state: string;
}

const COLUMNS = 'name, message, code, at, attempts, state';

export async function writeRunnerError(pool: Pool, schema: string, projection: string, error: StoredRunnerError | undefined): Promise<void> {
  const table = `${quoteIdentifier(schema)}.projection_errors`;
  try {
    if (error === undefined) {
      await pool.query(`DELETE FROM ${table} WHERE name = $1`, [projection]);
      return;
    }
    await pool.query(
      `INSERT INTO ${table} (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (name) DO UPDATE SET message = excluded.message, code = excluded.code, at = excluded.at,
         attempts = excluded.attempts, state = excluded.state`,
      [projection, error.message, error.code ?? null, error.at, error.attempts, error.state],
    );
  } catch (e) {
    throw translatePgError(e, 'record a projection runner error', schema, true);
  }
}

export async function readRunnerError(pool: Pool, schema: string, projection: string): Promise<StoredRunnerError | undefined> {
  try {
    const { rows } = await pool.query<ErrorRow>(`SELECT ${COLUMNS} FROM ${quoteIdentifier(schema)}.projection_errors WHERE name = $1`, [projection]);
    return rows[0] === undefined ? undefined : parseStoredRunnerError(rows[0]);
  } catch (e) {
    throw translatePgError(e, 'read a projection runner error', schema);
  }
}

/** Every stored fault by projection; empty when the schema predates the table. */
export async function listRunnerErrors(pool: Pool, schema: string): Promise<Map<string, StoredRunnerError>> {
  const table = `${quoteIdentifier(schema)}.projection_errors`;
  const errors = new Map<string, StoredRunnerError>();
  const exists = await pool.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [table]);
  if (exists.rows[0]?.found !== true) return errors;
  const { rows } = await pool.query<ErrorRow>(`SELECT ${COLUMNS} FROM ${table} ORDER BY name COLLATE "C"`);
  for (const row of rows) {
    const error = parseStoredRunnerError(row);
    if (error !== undefined) errors.set(row.name, error);
  }
  return errors;
}
