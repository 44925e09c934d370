import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../src/index.js';
import { SqliteEventStore } from '../src/sqlite/index.js';
import { sqliteTempDir } from './fixtures/sqlite-temp.js';

const temp = sqliteTempDir('eventfold-sqlite-crash-');
afterAll(() => temp.cleanup());

const writerScript = fileURLToPath(new URL('./fixtures/sqlite-crash-writer.ts', import.meta.url));
const repoRoot = fileURLToPath(new URL('..', import.meta.url));

interface Marker {
  writer: string;
  batch: number;
  of: number;
  index: number;
}

/**
 * Starts the writer, waits until it is appending, lets it run `ms` more, then SIGKILLs it.
 * Resolves to true when the kill landed inside an append (its hook ran, the append had not returned).
 */
async function runAndKill(file: string, writer: string, ms: number, loops = 1): Promise<{ midAppend: boolean; acknowledged: string[]; largestGroup: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', writerScript, file, writer, String(loops)], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(signal ?? code)),
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('appending')) resolve();
    });
    void exited.then((how) => reject(new Error(`writer exited early (${String(how)}): ${stderr}`)));
  });
  await new Promise((resolve) => setTimeout(resolve, ms));
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  const lines = stdout.trim().split('\n');
  // A `done` line is printed only after the append's promise resolved: it was acknowledged.
  const done = lines.filter((line) => line.startsWith('done ')).map((line) => line.split(' '));
  return {
    midAppend: lines[lines.length - 1]!.startsWith('begin '),
    acknowledged: done.map(([, tag, batch]) => `${tag}/${batch}`),
    largestGroup: Math.max(0, ...done.map(([, , , largest]) => Number(largest))),
  };
}

/** Everything a reopened store must show after a crash. Returns the number of events stored. */
async function verify(file: string, acknowledged: readonly string[] = []): Promise<number> {
  const raw = new Database(file, { readonly: true });
  expect(raw.pragma('integrity_check', { simple: true })).toBe('ok');
  const hookRows = raw.prepare('SELECT writer, batch, events FROM crash_batches').raw().all() as Array<[string, number, number]>;
  raw.close();

  const store = new SqliteEventStore({ path: file, pageSize: 500 });
  try {
    const log = await store.readAll().toArray();
    for (let i = 1; i < log.length; i++) expect(log[i]!.position).toBeGreaterThan(log[i - 1]!.position);
    expect(await store.headPosition()).toBe(log.length === 0 ? 0 : log[log.length - 1]!.position);

    // Whole appends only: every batch has all `of` events, each index exactly once.
    const batches = new Map<string, Marker[]>();
    for (const event of log) {
      const marker = event.data as Marker;
      const key = `${marker.writer}/${marker.batch}`;
      const list = batches.get(key) ?? [];
      list.push(marker);
      batches.set(key, list);
    }
    for (const [key, markers] of batches) {
      const of = markers[0]!.of;
      expect(markers.length, `batch ${key}`).toBe(of);
      expect(markers.map((m) => m.index).sort((a, b) => a - b)).toEqual(Array.from({ length: of }, (_, i) => i));
    }
    // Every acknowledged append survived the kill.
    const missing = acknowledged.filter((key) => !batches.has(key));
    expect(missing, 'acknowledged appends lost').toEqual([]);
    // The hook's row committed exactly with its batch.
    expect(new Set(hookRows.map(([w, b]) => `${w}/${b}`))).toEqual(new Set(batches.keys()));
    expect(hookRows.reduce((sum, [, , n]) => sum + n, 0)).toBe(log.length);

    // Versions contiguous per stream, and readStream agrees with readAll.
    const byStream = new Map<string, RecordedEvent[]>();
    for (const event of log) {
      const list = byStream.get(event.streamId) ?? [];
      list.push(event);
      byStream.set(event.streamId, list);
    }
    for (const [streamId, expected] of byStream) {
      const stream = await store.readStream(streamId).toArray();
      expect(stream.map((e) => e.version)).toEqual(Array.from({ length: stream.length }, (_, i) => i + 1));
      expect(stream.map((e) => [e.position, e.eventId])).toEqual(expected.map((e) => [e.position, e.eventId]));
      expect(await store.streamVersion(streamId)).toBe(stream.length);
    }
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
