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
];
