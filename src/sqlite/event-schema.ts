import type { Migration } from './schema.js';

export const EVENTS_COMPONENT = 'events';

/**
 * The event log. `position` is the rowid (INTEGER PRIMARY KEY), assigned by the store inside the
 * write transaction; the UNIQUE (stream_id, version) index serves stream reads and version checks,
 * and backs the version check as a last line of defence. `data` and `metadata` are JSON text;
 * `metadata` is NULL when empty (most events), which keeps rows small and reads cheaper.
 * `recorded_at` is Unix epoch milliseconds.
 */
export const EVENT_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'event log',
    up: (db) => {
      db.exec(`
        CREATE TABLE eventfold_events (
          position    INTEGER PRIMARY KEY,
          stream_id   TEXT    NOT NULL,
          version     INTEGER NOT NULL,
          type        TEXT    NOT NULL,
          data        TEXT    NOT NULL,
          metadata    TEXT,
          event_id    TEXT    NOT NULL,
          recorded_at INTEGER NOT NULL,
          UNIQUE (stream_id, version)
        ) STRICT;
      `);
    },
  },
  {
    version: 2,
    description: 'filtered reads: stream category column, type index',
    up: (db) => {
      // The virtual column costs no space. Only the type filter gets an index: a category filter
      // reads the log in position order (one pass over a catch-up), which costs appends nothing.
      db.exec(`
        ALTER TABLE eventfold_events ADD COLUMN category TEXT GENERATED ALWAYS AS (
          CASE WHEN instr(stream_id, '-') > 0 THEN substr(stream_id, 1, instr(stream_id, '-') - 1) ELSE stream_id END
        ) VIRTUAL;
        CREATE INDEX eventfold_events_type ON eventfold_events (type, position);
      `);
    },
  },
];
