import type BetterSqlite3 from 'better-sqlite3';
import { parseStoredRunnerError, type StoredRunnerError } from '../projections/runner-error.js';
import { translateSqliteError } from './connection.js';

interface ErrorRow {
  name: string;
  message: string;
  code: string | null;
  at: number;
  attempts: number;
  state: string;
}

const TABLE = 'eventfold_projection_errors';

function rowToError(row: ErrorRow): StoredRunnerError | undefined {
  return parseStoredRunnerError(row);
}

/** Writes (or with `undefined`, deletes) a runner's last fault; the table exists from projections migration 3. */
export function writeRunnerError(db: BetterSqlite3.Database, projection: string, error: StoredRunnerError | undefined): void {
  try {
    if (error === undefined) {
      db.prepare(`DELETE FROM ${TABLE} WHERE name = ?`).run(projection);
      return;
    }
    db.prepare(
      `INSERT INTO ${TABLE} (name, message, code, at, attempts, state) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET message = excluded.message, code = excluded.code, at = excluded.at,
         attempts = excluded.attempts, state = excluded.state`,
    ).run(projection, error.message, error.code ?? null, error.at.getTime(), error.attempts, error.state);
  } catch (e) {
    throw translateSqliteError(e, 'record a projection runner error');
  }
}

export function readRunnerError(db: BetterSqlite3.Database, projection: string): StoredRunnerError | undefined {
  try {
    const row = db.prepare<[string], ErrorRow>(`SELECT name, message, code, at, attempts, state FROM ${TABLE} WHERE name = ?`).get(projection);
    return row === undefined ? undefined : rowToError(row);
  } catch (e) {
    throw translateSqliteError(e, 'read a projection runner error');
  }
}

/** Every stored fault by projection; empty when the file predates the table (an older schema is read as is). */
export function listRunnerErrors(db: BetterSqlite3.Database): Map<string, StoredRunnerError> {
  const exists = db.prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?`).pluck().get(TABLE) !== undefined;
  const errors = new Map<string, StoredRunnerError>();
  if (!exists) return errors;
  for (const row of db.prepare<[], ErrorRow>(`SELECT name, message, code, at, attempts, state FROM ${TABLE} ORDER BY name`).all()) {
    const error = rowToError(row);
    if (error !== undefined) errors.set(row.name, error);
  }
  return errors;
}
