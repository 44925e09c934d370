import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteEventStore } from '../src/sqlite/index.js';
import { sqliteTempDir } from './fixtures/sqlite-temp.js';
import { expectWholeAppends, runAndKill as runWriterAndKill, type KilledWriter } from './support/crash-writer.js';

const temp = sqliteTempDir('eventfold-sqlite-crash-');
afterAll(() => temp.cleanup());

function runAndKill(file: string, writer: string, ms: number, loops = 1): Promise<KilledWriter> {
  return runWriterAndKill('sqlite-crash-writer.ts', [file, writer, String(loops)], ms);
}

/** Everything a reopened store must show after a crash. Returns the number of events stored. */
async function verify(file: string, acknowledged: readonly string[] = []): Promise<number> {
  const raw = new Database(file, { readonly: true });
  expect(raw.pragma('integrity_check', { simple: true })).toBe('ok');
  const hookRows = raw.prepare('SELECT writer, batch, events FROM crash_batches').raw().all() as Array<[string, number, number]>;
  raw.close();

  const store = new SqliteEventStore({ path: file, pageSize: 500 });
  try {
    const { log, batches } = await expectWholeAppends(store, acknowledged);
    // The hook's row committed exactly with its batch.
    expect(new Set(hookRows.map(([w, b]) => `${w}/${b}`))).toEqual(new Set(batches.keys()));
    expect(hookRows.reduce((sum, [, , n]) => sum + n, 0)).toBe(log.length);
    return log.length;
  } finally {
    await store.close();
  }
}

describe('SqliteEventStore crash safety', () => {
  it('after SIGKILL mid-append the file holds only whole appends, contiguous versions and a consistent log', async () => {
    const file = temp.file('crash.db');
    let stored = 0;
    let midAppendKills = 0;
    // At least 6 rounds, and more (up to 20) until some kill provably landed inside an append.
    for (let round = 1; round <= 20 && (round <= 6 || midAppendKills === 0); round++) {
      const run = await runAndKill(file, `w${round}`, 30 + Math.floor(Math.random() * 250));
      if (run.midAppend) midAppendKills++;
      const now = await verify(file, run.acknowledged);
      // Each round made progress on top of what earlier rounds left behind.
      expect(now).toBeGreaterThan(stored);
      stored = now;
    }
    console.log(`crash test: ${midAppendKills} kill(s) landed inside an append`);
    expect(midAppendKills).toBeGreaterThan(0);
  }, 180_000);

  it('with group commit and 8 concurrent writers, SIGKILL loses no acknowledged append and leaves only whole ones', async () => {
    const file = temp.file('crash-grouped.db');
    let stored = 0;
    let midAppendKills = 0;
    let largestGroup = 0;
    for (let round = 1; round <= 20 && (round <= 6 || midAppendKills === 0); round++) {
      const run = await runAndKill(file, `g${round}`, 30 + Math.floor(Math.random() * 250), 8);
      if (run.midAppend) midAppendKills++;
      largestGroup = Math.max(largestGroup, run.largestGroup);
      expect(run.acknowledged.length).toBeGreaterThan(0);
      const now = await verify(file, run.acknowledged);
      expect(now).toBeGreaterThan(stored);
      stored = now;
    }
    console.log(`grouped crash test: ${midAppendKills} kill(s) inside an append, largest group ${largestGroup}`);
    expect(midAppendKills).toBeGreaterThan(0);
    // The writers' appends did share transactions.
    expect(largestGroup).toBeGreaterThan(1);
  }, 180_000);
});
