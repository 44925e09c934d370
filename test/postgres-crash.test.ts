import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../src/index.js';
import { PostgresEventStore } from '../src/postgres/index.js';
import { pgTestDatabase } from './support/postgres.js';

const writerScript = fileURLToPath(new URL('./fixtures/postgres-crash-writer.ts', import.meta.url));
const repoRoot = fileURLToPath(new URL('..', import.meta.url));

const db = pgTestDatabase({ max: 4 });
afterAll(() => db.cleanup());

interface Marker {
  writer: string;
  batch: number;
  of: number;
  index: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts a writer, waits until it is appending, lets it run `ms` more, then SIGKILLs it — at once,
 * or (`inHook`) as soon as a hooked append reports its hook ran, i.e. inside its transaction.
 * Resolves to true when the kill landed inside a hooked append (its hook ran, it had not returned).
 */
async function runAndKill(
  schema: string,
  writer: string,
  ms: number,
  inHook: boolean,
  loops = 1,
): Promise<{ midAppend: boolean; acknowledged: string[]; largestGroup: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', writerScript, schema, writer, String(loops)], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(signal ?? code)),
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', () => {
      if (stdout.includes('appending')) resolve();
    });
    void exited.then((how) => reject(new Error(`writer exited early (${String(how)}): ${stderr}`)));
  });
  await sleep(ms);
  if (inHook) {
    const seen = stdout.length;
    await new Promise<void>((resolve) => {
      const onData = (): void => {
        if (!stdout.slice(seen).includes('begin ')) return;
        child.stdout.off('data', onData);
        resolve();
      };
      child.stdout.on('data', onData);
    });
  }
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  await waitForBackendsToEnd(writer);
  const lines = stdout.trim().split('\n');
  // A `done` line is printed only after the append's promise resolved: it was acknowledged.
  const done = lines.filter((line) => line.startsWith('done ')).map((line) => line.split(' '));
  return {
    midAppend: lines[lines.length - 1]!.startsWith('begin '),
    acknowledged: done.map(([, tag, batch]) => `${tag}/${batch}`),
    largestGroup: Math.max(0, ...done.map(([, , , largest]) => Number(largest))),
  };
}

/** The server notices a dead client on its own schedule; check only once its sessions are gone. */
async function waitForBackendsToEnd(writer: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const { rows } = await db.pool.query('SELECT 1 FROM pg_stat_activity WHERE application_name = $1', [
      `eventfold-crash-${writer}`,
    ]);
    if (rows.length === 0) return;
    await sleep(50);
  }
  throw new Error(`backends of crashed writer ${writer} are still alive after 10 s`);
}

/** What a fresh store must show after the crashes. Returns the number of events stored. */
async function verify(schema: string, acknowledged: readonly string[] = []): Promise<number> {
  const store = new PostgresEventStore({ pool: db.pool, schema, pageSize: 100 });
  try {
    const log = await store.readAll().toArray();
    const table = await db.pool.query<{ position: string }>(`SELECT position FROM "${schema}".events ORDER BY position`);
    expect(log.map((e) => e.position)).toEqual(table.rows.map((r) => Number(r.position)));
    for (let i = 1; i < log.length; i++) expect(log[i]!.position).toBeGreaterThan(log[i - 1]!.position);
    expect(await store.headPosition()).toBe(log.length === 0 ? 0 : log[log.length - 1]!.position);

    // Every batch whole: all `of` events, indexes 0..of-1, each exactly once.
    const batches = new Map<string, RecordedEvent[]>();
    for (const event of log) {
      const m = event.data as Marker;
      const key = `${m.writer}/${m.batch}`;
      batches.set(key, [...(batches.get(key) ?? []), event]);
    }
    for (const [key, events] of batches) {
      const of = (events[0]!.data as Marker).of;
      const indexes = events.map((e) => (e.data as Marker).index).sort((a, b) => a - b);
      expect(indexes, `batch ${key}`).toEqual(Array.from({ length: of }, (_, i) => i));
    }

    // Every acknowledged append survived the kill.
    expect(acknowledged.filter((key) => !batches.has(key)), 'acknowledged appends lost').toEqual([]);

    // Streams: versions 1..n without gaps, the streams table agrees, positions grow with versions.
    const byStream = new Map<string, RecordedEvent[]>();
    for (const event of log) byStream.set(event.streamId, [...(byStream.get(event.streamId) ?? []), event]);
    for (const [streamId, events] of byStream) {
      const stream = await store.readStream(streamId).toArray();
      expect(stream.map((e) => e.eventId)).toEqual(events.map((e) => e.eventId));
      expect(stream.map((e) => e.version)).toEqual(Array.from({ length: stream.length }, (_, i) => i + 1));
      expect(await store.streamVersion(streamId)).toBe(stream.length);
    }

    // The hook's rows committed or vanished with their events: one row per stored hooked batch.
    const hookRows = await db.pool.query<{ writer: string; batch: number; events: number }>(
      `SELECT writer, batch, events FROM "${schema}".crash_batches ORDER BY writer, batch`,
    );
    const hookedBatches = [...batches.entries()]
      .filter(([, events]) => (events[0]!.data as Marker).batch % 2 === 1)
      .map(([key, events]) => `${key}:${events.length}`)
      .sort();
    expect(hookRows.rows.map((r) => `${r.writer}/${r.batch}:${r.events}`).sort()).toEqual(hookedBatches);
    return log.length;
  } finally {
    await store.close();
  }
}

async function createSchema(schema: string): Promise<void> {
  const store = await PostgresEventStore.create({ pool: db.pool, schema });
  await store.close();
  await db.pool.query(`CREATE TABLE "${schema}".crash_batches (writer text NOT NULL, batch integer NOT NULL, events integer NOT NULL)`);
}

describe('PostgresEventStore: crash safety', () => {
  const schema = db.schema('crash');

  beforeAll(() => createSchema(schema));

  it('a writer SIGKILLed mid-append leaves only whole appends, contiguous versions and a consistent log', async () => {
    let total = 0;
    let insideAppend = 0;
    const runs = 6;
    for (let run = 0; run < runs; run++) {
      const killed = await runAndKill(schema, `w${run}`, 150 + run * 60, run % 2 === 1);
      if (killed.midAppend) insideAppend++;
      const stored = await verify(schema, killed.acknowledged);
      expect(stored).toBeGreaterThanOrEqual(total);
      total = stored;
    }
    expect(total).toBeGreaterThan(0);
    expect(insideAppend).toBeGreaterThan(0);
    console.info(`crash: ${runs} kills, ${insideAppend} inside a hooked append's transaction, ${total} events stored`);

    // The store keeps working after the crashes: append with the exact version and read back.
    const store = new PostgresEventStore({ pool: db.pool, schema });
    try {
      const version = await store.streamVersion('crash-a');
      const result = await store.append('crash-a', [{ type: 'After', data: {} }], { expectedVersion: version });
      expect(result.version).toBe(version + 1);
      const last = await store.readStream('crash-a', { backwards: true, limit: 1 }).toArray();
      expect(last.map((e) => e.type)).toEqual(['After']);
    } finally {
      await store.close();
    }
  });

  it('with group commit and 8 concurrent writers, SIGKILL loses no acknowledged append and leaves only whole ones', async () => {
    let total = 0;
    let insideAppend = 0;
    let largestGroup = 0;
    const runs = 6;
    const grouped = db.schema('crash_grouped');
    await createSchema(grouped);
    for (let run = 0; run < runs; run++) {
      const killed = await runAndKill(grouped, `g${run}`, 150 + run * 60, run % 2 === 1, 8);
      if (killed.midAppend) insideAppend++;
      largestGroup = Math.max(largestGroup, killed.largestGroup);
      expect(killed.acknowledged.length).toBeGreaterThan(0);
      const stored = await verify(grouped, killed.acknowledged);
      expect(stored).toBeGreaterThan(total);
      total = stored;
    }
    console.info(`grouped crash: ${runs} kills, ${insideAppend} inside a hooked append's transaction, largest group ${largestGroup}`);
    expect(insideAppend).toBeGreaterThan(0);
    expect(largestGroup).toBeGreaterThan(1);
  }, 180_000);
});
