/**
 * Projection catch-up: N events (SQLite 1,000,000, PostgreSQL 200,000 by default, see below) from the
 * event store into a read model in the same database, through the library's runner, beside a raw
 * baseline doing the same work by hand: plain SELECT of the log in batches, one UPSERT per event
 * and a checkpoint UPDATE per batch, all in one transaction per batch, same batch size.
 * SQLite runs BENCH_PROJECTION_ROUNDS rounds (default 5) of both sides, alternating, and reports
 * each side's median round, plus the CPU time each side used (immune to other load on the machine).
 *
 *   node --expose-gc --import tsx bench/projections.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { defineProjection } from '../src/projections/projection.js';
import type { Event } from '../src/events/types.js';
import { PostgresEventStore } from '../src/postgres/postgres-event-store.js';
import { PostgresProjectionRunner, type PostgresProjectionContext } from '../src/postgres/projections.js';
import { SqliteEventStore } from '../src/sqlite/sqlite-event-store.js';
import { SqliteProjectionRunner, type SqliteProjectionContext } from '../src/sqlite/projections.js';
import { collectGarbage, median } from './support/measure.js';

type BenchEvent = Event<'Deposited', { amount: number }> | Event<'Withdrawn', { amount: number }>;

// PostgreSQL pays one round trip per UPSERT on both sides (~5k/s on the 2-core CI box), so its
// default log is smaller to keep the run short; BENCH_PROJECTION_EVENTS_PG=1000000 for the full size.
const SQLITE_EVENTS = Number(process.env.BENCH_PROJECTION_EVENTS ?? 1_000_000);
const PG_EVENTS = Number(process.env.BENCH_PROJECTION_EVENTS_PG ?? process.env.BENCH_PROJECTION_EVENTS ?? 200_000);
const BATCH = 1000;
const STREAMS = 1000;
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

interface Row {
  readonly target: string;
  readonly events: number;
  readonly baseline: number;
  readonly library: number;
  readonly seedPerSecond: number;
  /** CPU time of the process (all threads) per contender, ms: tells machine noise from real cost. */
  readonly cpuMs?: { readonly baseline: number; readonly library: number };
}

/** CPU time (user + system, every thread of this process) in ms. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}


/** Appends EVENTS events, 10 streams × 1,000 events per appendMany (the store's own batch path). */
async function seed(store: { appendMany: PostgresEventStore['appendMany'] }, EVENTS: number): Promise<number> {
  const start = performance.now();
  const perStream = 1000;
  const streamsPerCall = 10;
  let written = 0;
  let call = 0;
  while (written < EVENTS) {
    const appends = [];
    for (let s = 0; s < streamsPerCall && written < EVENTS; s++) {
      const stream = (call * streamsPerCall + s) % STREAMS;
      const count = Math.min(perStream, EVENTS - written);
      const events: BenchEvent[] = [];
      for (let i = 0; i < count; i++) {
        const n = written + i;
        events.push(n % 4 === 3 ? { type: 'Withdrawn', data: { amount: n % 100 } } : { type: 'Deposited', data: { amount: n % 100 } });
      }
      appends.push({ streamId: `account-${stream}`, events, expectedVersion: 'any' as const });
      written += count;
    }
    await store.appendMany(appends);
    call++;
  }
  return EVENTS / ((performance.now() - start) / 1000);
}

function delta(type: string, data: { amount: number }): number {
  return type === 'Deposited' ? data.amount : -data.amount;
}

// ---------------------------------------------------------------- PostgreSQL

const PG_UPSERT = (table: string) =>
  `INSERT INTO ${table} (stream_id, balance, events) VALUES ($1, $2, 1)
   ON CONFLICT (stream_id) DO UPDATE SET balance = ${table}.balance + excluded.balance, events = ${table}.events + 1`;

async function pgBaseline(pool: pg.Pool, schema: string, EVENTS: number): Promise<number> {
  const s = `"${schema}"`;
  const table = `${s}.raw_accounts`;
  const client = await pool.connect();
  try {
    await client.query(`CREATE TABLE ${table} (stream_id text PRIMARY KEY, balance bigint NOT NULL, events integer NOT NULL)`);
    await client.query(`CREATE TABLE ${s}.raw_checkpoint (name text PRIMARY KEY, position bigint NOT NULL)`);
    await client.query(`INSERT INTO ${s}.raw_checkpoint VALUES ('raw', 0)`);
    collectGarbage();
    const start = performance.now();
    let position = 0;
    let processed = 0;
    for (;;) {
      const { rows } = await client.query<{ position: string; stream_id: string; type: string; data: { amount: number } }>({
        name: 'raw_select',
        text: `SELECT position, stream_id, type, data FROM ${s}.events WHERE position > $1 ORDER BY position LIMIT $2`,
        values: [position, BATCH],
      });
      if (rows.length === 0) break;
      await client.query('BEGIN');
      for (const row of rows) {
        await client.query({ name: 'raw_upsert', text: PG_UPSERT(table), values: [row.stream_id, delta(row.type, row.data)] });
      }
      position = Number(rows[rows.length - 1]!.position);
      await client.query({ name: 'raw_checkpoint', text: `UPDATE ${s}.raw_checkpoint SET position = $1 WHERE name = 'raw'`, values: [position] });
      await client.query('COMMIT');
      processed += rows.length;
    }
    if (processed !== EVENTS) throw new Error(`baseline processed ${processed} events, expected ${EVENTS}`);
    return processed / ((performance.now() - start) / 1000);
  } finally {
    client.release();
  }
}

async function pgLibrary(store: PostgresEventStore, EVENTS: number): Promise<number> {
  const table = `"${store.schema}".lib_accounts`;
  const upsert = PG_UPSERT(table);
  const apply = (streamId: string, amount: number, { client }: PostgresProjectionContext) =>
    client.query({ name: 'lib_upsert', text: upsert, values: [streamId, amount] }).then(() => undefined);
  const projection = defineProjection<BenchEvent, PostgresProjectionContext>({
    name: 'bench',
    handlers: {
      Deposited: (e, ctx) => apply(e.streamId, e.data.amount, ctx),
      Withdrawn: (e, ctx) => apply(e.streamId, -e.data.amount, ctx),
    },
    setup: async ({ client }) => {
      await client.query(`CREATE TABLE IF NOT EXISTS ${table} (stream_id text PRIMARY KEY, balance bigint NOT NULL, events integer NOT NULL)`);
    },
  });
  const runner = new PostgresProjectionRunner(store, projection, { batchSize: BATCH });
  collectGarbage();
  const start = performance.now();
  await runner.start();
  await runner.waitUntilCaughtUp();
  const seconds = (performance.now() - start) / 1000;
  await runner.stop();
  if (runner.checkpoint?.position !== (await store.headPosition())) throw new Error('library run did not reach the head');
  return EVENTS / seconds;
}

async function benchPostgres(): Promise<Row> {
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  pool.on('error', () => {});
  const schema = `bench_proj_${Date.now().toString(36)}`;
  const store = await PostgresEventStore.create({ pool, schema, pageSize: BATCH });
  try {
    const seedPerSecond = await seed(store, PG_EVENTS);
    await pool.query(`VACUUM ANALYZE "${schema}".events`);
    // Warm the cache once so neither contender pays the first read from disk.
    await pool.query(`SELECT count(*) FROM "${schema}".events`);
    const baseline = await pgBaseline(pool, schema, PG_EVENTS);
    const library = await pgLibrary(store, PG_EVENTS);
    return { target: 'PostgreSQL → PostgreSQL', events: PG_EVENTS, baseline, library, seedPerSecond };
  } finally {
    await store.close();
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pool.end();
  }
}

// ---------------------------------------------------------------- SQLite

const SQLITE_UPSERT = (table: string) =>
  `INSERT INTO ${table} (stream_id, balance, events) VALUES (?, ?, 1)
   ON CONFLICT (stream_id) DO UPDATE SET balance = balance + excluded.balance, events = events + 1`;

function sqliteBaseline(db: BetterSqlite3.Database, EVENTS: number, round: number): number {
  const accounts = `raw_accounts_${round}`;
  const checkpoints = `raw_checkpoint_${round}`;
  db.exec(`CREATE TABLE ${accounts} (stream_id TEXT PRIMARY KEY, balance INTEGER NOT NULL, events INTEGER NOT NULL);
           CREATE TABLE ${checkpoints} (name TEXT PRIMARY KEY, position INTEGER NOT NULL);
           INSERT INTO ${checkpoints} VALUES ('raw', 0);`);
  const select = db.prepare<[number, number], { position: number; stream_id: string; type: string; data: string }>(
    'SELECT position, stream_id, type, data FROM eventfold_events WHERE position > ? ORDER BY position LIMIT ?',
  );
  const upsert = db.prepare(SQLITE_UPSERT(accounts));
  const checkpoint = db.prepare(`UPDATE ${checkpoints} SET position = ? WHERE name = 'raw'`);
  const apply = db.transaction((rows: { position: number; stream_id: string; type: string; data: string }[]) => {
    for (const row of rows) upsert.run(row.stream_id, delta(row.type, JSON.parse(row.data) as { amount: number }));
    checkpoint.run(rows[rows.length - 1]!.position);
  });
  collectGarbage();
  const start = performance.now();
  let position = 0;
  let processed = 0;
  for (;;) {
    const rows = select.all(position, BATCH);
    if (rows.length === 0) break;
    apply.immediate(rows);
    position = rows[rows.length - 1]!.position;
    processed += rows.length;
  }
  if (processed !== EVENTS) throw new Error(`baseline processed ${processed} events, expected ${EVENTS}`);
  return processed / ((performance.now() - start) / 1000);
}

async function sqliteLibrary(store: SqliteEventStore, EVENTS: number, round: number): Promise<number> {
  const accounts = `lib_accounts_${round}`;
  let upsert: BetterSqlite3.Statement | undefined;
  const apply = (streamId: string, amount: number, { db }: SqliteProjectionContext): void => {
    upsert ??= db.prepare(SQLITE_UPSERT(accounts));
    upsert.run(streamId, amount);
  };
  const projection = defineProjection<BenchEvent, SqliteProjectionContext>({
    name: `bench-${round}`,
    handlers: {
      Deposited: (e, ctx) => apply(e.streamId, e.data.amount, ctx),
      Withdrawn: (e, ctx) => apply(e.streamId, -e.data.amount, ctx),
    },
    setup: ({ db }) => {
      db.exec(`CREATE TABLE IF NOT EXISTS ${accounts} (stream_id TEXT PRIMARY KEY, balance INTEGER NOT NULL, events INTEGER NOT NULL)`);
    },
  });
  const runner = new SqliteProjectionRunner(store, projection, { batchSize: BATCH });
  collectGarbage();
  const start = performance.now();
  await runner.start();
  await runner.waitUntilCaughtUp();
  const seconds = (performance.now() - start) / 1000;
  await runner.stop();
  if (runner.checkpoint?.position !== (await store.headPosition())) throw new Error('library run did not reach the head');
  return EVENTS / seconds;
}

// Other work on a shared machine comes and goes during a run; timing each side once, one after the
// other, let a burst of it land on one side only (0.57× to 1.03× on the same code). Each round runs
// both sides on fresh read-model tables, alternating; the median round of each side is reported.
const SQLITE_ROUNDS = Math.max(1, Math.floor(Number(process.env.BENCH_PROJECTION_ROUNDS ?? 5)) || 1);

async function benchSqlite(): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'eventfold-bench-projections-'));
  // The same durability for both contenders: the store's connection, synchronous=NORMAL (WAL).
  const store = new SqliteEventStore({ path: join(dir, 'bench.sqlite'), synchronous: 'NORMAL', pageSize: BATCH });
  try {
    const seedPerSecond = await seed(store, SQLITE_EVENTS);
    const baselines: number[] = [];
    const libraries: number[] = [];
    const baselineCpu: number[] = [];
    const libraryCpu: number[] = [];
    for (let round = 0; round < SQLITE_ROUNDS; round++) {
      const runBaseline = (): void => {
        const cpu = cpuMs();
        baselines.push(sqliteBaseline(store.database, SQLITE_EVENTS, round));
        baselineCpu.push(cpuMs() - cpu);
      };
      const runLibrary = async (): Promise<void> => {
        const cpu = cpuMs();
        libraries.push(await sqliteLibrary(store, SQLITE_EVENTS, round));
        libraryCpu.push(cpuMs() - cpu);
      };
      // Who goes first alternates too, so neither side always inherits the other's WAL and garbage.
      if (round % 2 === 0) {
        runBaseline();
        await runLibrary();
      } else {
        await runLibrary();
        runBaseline();
      }
      const check = store.database
        .prepare(`SELECT (SELECT sum(balance) FROM raw_accounts_${round}) = (SELECT sum(balance) FROM lib_accounts_${round})`)
        .pluck()
        .get();
      if (check !== 1) throw new Error('library and baseline read models differ');
    }
    if (SQLITE_ROUNDS > 1) {
      const ratios = libraries.map((l, i) => `${(l / baselines[i]!).toFixed(2)}×`).join(', ');
      console.log(`SQLite rounds (runner/baseline, each round alternating): ${ratios}.`);
    }
    return {
      target: 'SQLite → SQLite',
      events: SQLITE_EVENTS,
      baseline: median(baselines),
      library: median(libraries),
      seedPerSecond,
      cpuMs: { baseline: median(baselineCpu), library: median(libraryCpu) },
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- report

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

const rows: Row[] = [];
console.log(`Projection catch-up, batch ${BATCH}, ${STREAMS} streams, one UPSERT per event, checkpoint per batch.\n`);
// BENCH_PROJECTION_TARGETS=sqlite (or postgres) runs one side only.
const targets = (process.env.BENCH_PROJECTION_TARGETS ?? 'sqlite,postgres').split(',');
if (targets.includes('sqlite')) rows.push(await benchSqlite());
if (targets.includes('postgres')) rows.push(await benchPostgres());
console.log('| catch-up | events | raw baseline (events/s) | eventfold runner (events/s) | ratio | goal |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const row of rows) {
  console.log(`| ${row.target} | ${fmt(row.events)} | ${fmt(row.baseline)} | ${fmt(row.library)} | ${(row.library / row.baseline).toFixed(2)}× | ≥ 0.70× |`);
}
console.log(`\nSetup (untimed): seeded ${rows.map((r) => `${r.target.split(' ')[0]} at ${fmt(r.seedPerSecond)} events/s`).join(', ')}.`);
for (const row of rows) {
  if (row.cpuMs === undefined) continue;
  // Wall-clock ratios swing when other processes take the CPU; the CPU-time ratio does not.
  const { baseline, library } = row.cpuMs;
  console.log(
    `${row.target} CPU time (median round): baseline ${fmt(baseline)} ms, runner ${fmt(library)} ms (ratio by CPU time ${(baseline / library).toFixed(2)}×).`,
  );
}
console.log(`Peak RSS of the bench process: ${Math.round(process.resourceUsage().maxRSS / 1024)} MB.`);
