/** Pieces shared by the SQLite bench scripts: the event, the raw table, timers, the row format. */
import Database from 'better-sqlite3';
import type { AnyEvent } from '../../src/index.js';

export const SINGLE_STREAMS = 2_000;
export const SINGLE_PER_STREAM = 10;

// ---------------------------------------------------------------------------------------------
// Shared pieces

export interface Deposited {
  amount: number;
  currency: string;
  reference: string;
}

export const makeEvent = (i: number): AnyEvent => ({
  type: 'Deposited',
  data: { amount: (i % 97) + 1, currency: 'EUR', reference: `ref-${i}` } satisfies Deposited,
});

export interface Account {
  balance: number;
  count: number;
}
export const fold = (state: Account, type: string, data: Deposited): void => {
  if (type === 'Deposited') {
    state.balance += data.amount;
    state.count++;
  }
};

/** The table a plain better-sqlite3 app would write: one row per event, unique (stream, version). */
export function openRaw(file: string): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(`CREATE TABLE IF NOT EXISTS raw_events (
    id        INTEGER PRIMARY KEY,
    stream_id TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    type      TEXT    NOT NULL,
    data      TEXT    NOT NULL,
    metadata  TEXT    NOT NULL,
    UNIQUE (stream_id, version)
  )`);
  return db;
}

export const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

export function time(run: () => void): number {
  const start = performance.now();
  run();
  return performance.now() - start;
}
export async function timeAsync(run: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

export const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

export interface Row {
  case: string;
  adapter: string;
  baseline: string;
  ratio: string;
  goal: string;
}
