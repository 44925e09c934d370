import type { Migration } from './schema.js';

/** The `eventfold_schema` row of the projection tables. */
export const PROJECTIONS_COMPONENT = 'projections';

/** Table of parked events, created by the projections migration 2. */
const DEAD_LETTERS_DDL = `
  CREATE TABLE eventfold_projection_dead_letters (
    projection      TEXT    NOT NULL,
    position        INTEGER NOT NULL,
    event_id        TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    stream_id       TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL,
    error           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL,
    parked_at       INTEGER NOT NULL,
    retry_requested INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (projection, position)
  ) STRICT;`;

/** A runner's last fault, one row per projection while it has one (projections migration 3). */
const RUNNER_ERRORS_DDL = `
  CREATE TABLE eventfold_projection_errors (
    name     TEXT    PRIMARY KEY,
    message  TEXT    NOT NULL,
    code     TEXT,
    at       INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    state    TEXT    NOT NULL
  ) STRICT;`;

/** Checkpoints and runner locks, versioned like the event log (row `projections` in `eventfold_schema`). */
export const PROJECTION_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'projection checkpoints and runner locks',
    up: (db) => {
      db.exec(`
        CREATE TABLE eventfold_projection_checkpoints (
          name       TEXT    PRIMARY KEY,
          position   INTEGER NOT NULL,
          version    INTEGER NOT NULL,
          updated_at INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE eventfold_projection_locks (
          name       TEXT    PRIMARY KEY,
          owner      TEXT    NOT NULL,
          expires_at INTEGER NOT NULL
        ) STRICT;
      `);
    },
  },
  {
    version: 2,
    description: 'projection dead letters (parked poison events)',
    up: (db) => db.exec(DEAD_LETTERS_DDL),
  },
  {
    version: 3,
    description: "projection runners' last error (retried or final)",
    up: (db) => db.exec(RUNNER_ERRORS_DDL),
  },
];
