import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../src/postgres/index.js';
import { expectWholeAppends, runAndKill as runWriterAndKill, type KilledWriter, type Marker } from './support/crash-writer.js';
import { pgTestDatabase } from './support/postgres.js';

const db = pgTestDatabase({ max: 4 });
afterAll(() => db.cleanup());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs the PostgreSQL writer and SIGKILLs it (see `runWriterAndKill`; `inHook`: inside a hooked
 * append's transaction), then waits until the server has ended its sessions.
 */
async function runAndKill(schema: string, writer: string, ms: number, inHook: boolean, loops = 1): Promise<KilledWriter> {
  const killed = await runWriterAndKill('postgres-crash-writer.ts', [schema, writer, String(loops)], ms, { inHook });
  await waitForBackendsToEnd(writer);
  return killed;
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
    const { log, batches } = await expectWholeAppends(store, acknowledged);
    const table = await db.pool.query<{ position: string }>(`SELECT position FROM "${schema}".events ORDER BY position`);
    expect(log.map((e) => e.position)).toEqual(table.rows.map((r) => Number(r.position)));
    // The stream registry names exactly the streams that have events.
    const registry = await db.pool.query<{ stream_id: string }>(`SELECT stream_id FROM "${schema}".streams ORDER BY stream_id COLLATE "C"`);
    expect(registry.rows.map((r) => r.stream_id)).toEqual([...new Set(log.map((e) => e.streamId))].sort());

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
