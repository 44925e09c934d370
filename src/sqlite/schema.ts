import type BetterSqlite3 from 'better-sqlite3';
import { UnsupportedSchemaVersionError } from '../errors.js';

/**
 * Versioned schema for the tables eventfold keeps in a SQLite file. Each component (event log,
 * snapshots) has its own row in `eventfold_schema`, so the two can live in one file or apart and
 * evolve separately. Schema changes are append-only: a new release adds a `Migration` with the
 * next version number, and opening an older file runs the missing steps in one transaction.
 */
export interface Migration {
  /** 1 for the initial schema, then 2, 3, … without gaps. */
  readonly version: number;
  readonly description: string;
  readonly up: (db: BetterSqlite3.Database) => void;
}

export { UnsupportedSchemaVersionError };

const META_TABLE = 'eventfold_schema';

function readVersion(db: BetterSqlite3.Database, component: string): number {
  const hasMeta = db
    .prepare(`SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?`)
    .pluck()
    .get(META_TABLE);
  if (hasMeta === undefined) return 0;
  const version = db.prepare(`SELECT version FROM ${META_TABLE} WHERE component = ?`).pluck().get(component);
  return typeof version === 'number' ? version : 0;
}

function describeFile(db: BetterSqlite3.Database): string {
  return db.name === '' ? ':memory:' : db.name;
}

/**
 * Brings `component` up to the newest version in `migrations`. Returns the version it is at.
 * The common case (already current) only reads; migrating takes the write lock (BEGIN IMMEDIATE)
 * and re-reads inside it, so several processes opening the same file at once migrate it once.
 */
export function migrateSchema(db: BetterSqlite3.Database, component: string, migrations: readonly Migration[]): number {
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new Error(`eventfold bug: ${component} migrations must be numbered 1..n in order.`);
    }
  });
  const latest = migrations.length;
  const check = (found: number): boolean => {
    if (found > latest) throw new UnsupportedSchemaVersionError(component, found, latest, `The SQLite database '${describeFile(db)}'`);
    return found === latest;
  };
  if (check(readVersion(db, component))) return latest;

  db.transaction(() => {
    db.exec(
      `CREATE TABLE IF NOT EXISTS ${META_TABLE} (
         component  TEXT    PRIMARY KEY,
         version    INTEGER NOT NULL,
         updated_at INTEGER NOT NULL
       ) STRICT`,
    );
    const current = readVersion(db, component);
    if (check(current)) return;
    for (const migration of migrations.slice(current)) migration.up(db);
    db.prepare(
      `INSERT INTO ${META_TABLE} (component, version, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (component) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at`,
    ).run(component, latest, Date.now());
  }).immediate();
  return latest;
}

/** The schema version a component is at in this database (0 = not created yet). */
export function schemaVersion(db: BetterSqlite3.Database, component: string): number {
  return readVersion(db, component);
}
