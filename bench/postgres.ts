/**
 * PostgreSQL adapter benchmark: the library against raw `pg` code doing the same work, in the same
 * run, on the same server. Run: `node --expose-gc --import tsx bench/postgres.ts`
 * (DATABASE_URL overrides the server; BENCH_SCALE=0.1 runs a tenth of the work for a quick look).
 * Uses its own schema and drops it at the end. Prints a markdown table.
 */
import pg from 'pg';
import { PostgresEventStore, type PostgresNotifyMode } from '../src/postgres/index.js';
import { median } from './support/measure.js';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const SCALE = Number(process.env.BENCH_SCALE ?? '1');
const scaled = (n: number) => Math.max(1, Math.round(n * SCALE));

const STREAMS = scaled(2000);
const PER_STREAM = 10;
const REHYDRATE_EVENTS = scaled(100_000);
const BATCH_EVENTS = scaled(100_000);
const BATCH_SIZE = 1000;
const REPLAY_EVENTS = scaled(1_000_000);

const schema = `bench_${Date.now().toString(36)}_${process.pid}`;
const raw = `"${schema}"`;
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 20, application_name: 'eventfold-bench' });
pool.on('error', () => {});
/** The default configuration (notify 'after-commit', group commit on). */
const store = new PostgresEventStore({ pool, schema });
/** The same with group commit off: one transaction per append (the behaviour before group commit). */
const ungrouped = new PostgresEventStore({ pool, schema, groupCommit: false });
const storesByNotify: Record<PostgresNotifyMode, PostgresEventStore> = {
  'in-transaction': new PostgresEventStore({ pool, schema, notify: 'in-transaction', groupCommit: false }),
  'after-commit': ungrouped,
  off: new PostgresEventStore({ pool, schema, notify: 'off', groupCommit: false }),
};
/**
 * BENCH_APPEND_ROUNDS=n (default 1) repeats each single-append measurement n times, baseline and
 * library alternating, each round on fresh streams, and reports the median of each: on a noisy
 * machine one round can land in a burst of someone else's work.
 */
const APPEND_ROUNDS = Math.max(1, Math.round(Number(process.env.BENCH_APPEND_ROUNDS ?? '1')));

interface Row {
  readonly name: string;
  readonly unit: string;
  readonly library: number;
  readonly baseline: number | undefined;
  readonly goal: string;
  readonly note?: string;
}
const rows: Row[] = [];

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

async function timed(fn: () => Promise<void>): Promise<number> {
  gc();
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

/**
 * Runs one task per (stream, version) with `concurrency` workers. Worker w owns the streams
 * w, w + c, w + 2c, … and walks them round-robin, version by version, so every append has the
 * exact expected version and no two workers touch one stream.
 */
async function runWorkers(concurrency: number, task: (stream: number, version: number) => Promise<void>): Promise<void> {
  await Promise.all(
    Array.from({ length: concurrency }, async (_, w) => {
      for (let version = 0; version < PER_STREAM; version++) {
        for (let stream = w; stream < STREAMS; stream += concurrency) await task(stream, version);
      }
    }),
  );
}

async function setup(): Promise<void> {
  await store.migrate();
  await pool.query(`
    CREATE TABLE ${raw}.raw_events (
      position    bigserial   PRIMARY KEY,
      stream_id   text        NOT NULL,
      version     bigint      NOT NULL,
      type        text        NOT NULL,
      data        json        NOT NULL,
      metadata    json        NOT NULL,
      recorded_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (stream_id, version)
    )`);
}

/** (a) One event per append with an exact expected version, for each NOTIFY mode. */
async function singleAppends(concurrency: number, modes: readonly PostgresNotifyMode[]): Promise<void> {
  const total = STREAMS * PER_STREAM;
  const event = (stream: number, version: number) => ({
    type: 'Incremented',
    data: { by: (stream + version) % 7, note: 'a short payload' },
  });
  const library = async (mode: PostgresNotifyMode, round: number): Promise<number> => {
    const tag = `c${concurrency}-${mode}-r${round}`;
    const target = storesByNotify[mode];
    return timed(() =>
      runWorkers(concurrency, async (stream, version) => {
        await target.append(`lib-${tag}-${stream}`, [event(stream, version)], { expectedVersion: version });
      }),
    );
  };
  const baselineRun = (round: number): Promise<number> =>
    timed(() =>
      runWorkers(concurrency, async (stream, version) => {
        await pool.query({
          name: 'raw-insert',
          text: `INSERT INTO ${raw}.raw_events (stream_id, version, type, data, metadata) VALUES ($1, $2, $3, $4, $5)`,
          values: [`raw-c${concurrency}-r${round}-${stream}`, version + 1, 'Incremented', JSON.stringify(event(stream, version).data), '{}'],
        });
      }),
    );
  const baselineSeconds: number[] = [];
  const librarySeconds = new Map<PostgresNotifyMode, number[]>(modes.map((mode) => [mode, []]));
  for (let round = 0; round < APPEND_ROUNDS; round++) {
    baselineSeconds.push(await baselineRun(round));
    for (const mode of modes) librarySeconds.get(mode)!.push(await library(mode, round));
  }
  for (const mode of modes) {
    rows.push({
      name: `append 1 event with expected version, ${STREAMS} streams × ${PER_STREAM}, concurrency ${concurrency}, notify '${mode}'`,
      unit: 'appends/s',
      library: total / median(librarySeconds.get(mode)!),
      baseline: total / median(baselineSeconds),
      goal: '≥ 0.8×',
      ...(APPEND_ROUNDS > 1 ? { note: `median of ${APPEND_ROUNDS} rounds` } : {}),
    });
  }
}


function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/**
 * (a2) Group commit: one event per append with an exact expected version, `concurrency` callers on
 * different streams; raw single-row INSERTs (one transaction each), the store with group commit off
 * and on, interleaved round by round. At concurrency 1 also each append's latency (p50/p99).
 */
async function groupAppends(concurrency: number): Promise<void> {
  const total = STREAMS * PER_STREAM;
  const data = (stream: number, version: number) => ({ by: (stream + version) % 7, note: 'a short payload' });
  const latencies = new Map<string, number[]>([['off', []], ['on', []]]);
  // One side's appends of one version to every stream, `concurrency` callers at once.
  const slice = (tag: string, version: number, append: (stream: number, version: number) => Promise<unknown>): Promise<number> =>
    timed(() =>
      Promise.all(
        Array.from({ length: concurrency }, async (_, w) => {
          for (let stream = w; stream < STREAMS; stream += concurrency) {
            const start = process.hrtime.bigint();
            await append(stream, version);
            if (concurrency === 1) latencies.get(tag)?.push(Number(process.hrtime.bigint() - start) / 1e3);
          }
        }),
      ).then(() => undefined),
    );
  const seconds = new Map<string, number[]>([['raw', []], ['off', []], ['on', []]]);
  const rounds = Math.max(APPEND_ROUNDS, 3);
  for (let round = 0; round < rounds; round++) {
    const tag = `g${concurrency}-r${round}`;
    const roundSeconds = { raw: 0, off: 0, on: 0 };
    // The sides take turns version by version (rotating who goes first), so drift in the
    // machine's load reaches all of them alike.
    for (let version = 0; version < PER_STREAM; version++) {
      const sides = [
        async () =>
          (roundSeconds.raw += await slice('raw', version, (stream, v) =>
            pool.query({
              name: 'raw-insert',
              text: `INSERT INTO ${rawSchema}.raw_events (stream_id, version, type, data, metadata) VALUES ($1, $2, $3, $4, $5)`,
              values: [`raw-${tag}-${stream}`, v + 1, 'Incremented', JSON.stringify(data(stream, v)), '{}'],
            }),
          )),
        async () =>
          (roundSeconds.off += await slice('off', version, (stream, v) =>
            ungrouped.append(`off-${tag}-${stream}`, [{ type: 'Incremented', data: data(stream, v) }], { expectedVersion: v }),
          )),
        async () =>
          (roundSeconds.on += await slice('on', version, (stream, v) =>
            store.append(`on-${tag}-${stream}`, [{ type: 'Incremented', data: data(stream, v) }], { expectedVersion: v }),
          )),
      ];
      for (let k = 0; k < sides.length; k++) await sides[(version + round + k) % sides.length]!();
    }
    for (const side of ['raw', 'off', 'on'] as const) seconds.get(side)!.push(roundSeconds[side]);
  }
  const rawRate = total / median(seconds.get('raw')!);
  const stats = store.groupCommitStats;
  const before = statsBefore;
  statsBefore = stats ?? statsBefore;
  rows.push({
    name: `append 1 event with expected version, ${STREAMS} streams × ${PER_STREAM}, concurrency ${concurrency}, group commit off (one transaction per append)`,
    unit: 'appends/s',
    library: total / median(seconds.get('off')!),
    baseline: rawRate,
    goal: concurrency === 1 ? '≥ 0.8×' : '≥ 0.8×',
    note: `median of ${rounds} interleaved rounds`,
  });
  rows.push({
    name: `same, group commit on (the default)`,
    unit: 'appends/s',
    library: total / median(seconds.get('on')!),
    baseline: rawRate,
    goal: concurrency === 1 ? 'within 10% of group commit off' : '≥ 2×',
    note:
      stats === undefined
        ? ''
        : `${((stats.appends - before.appends) / Math.max(1, stats.groups - before.groups)).toFixed(1)} appends per transaction on average`,
  });
  if (concurrency === 1) {
    const describe = (tag: string) => {
      const sorted = [...latencies.get(tag)!].sort((a, b) => a - b);
      return `p50 ${percentile(sorted, 0.5).toFixed(0)} µs, p99 ${percentile(sorted, 0.99).toFixed(0)} µs`;
    };
    latencyNotes.push(`concurrency 1 latency, group commit off: ${describe('off')}; on: ${describe('on')}`);
  }
}
const latencyNotes: string[] = [];
let statsBefore = { groups: 0, appends: 0, largestGroup: 0 };
const rawSchema = raw;


/** (b) Fold a 100,000-event stream. */
async function rehydrate(): Promise<void> {
  const n = REHYDRATE_EVENTS;
  const events = (from: number, count: number) =>
    Array.from({ length: count }, (_, i) => ({ type: 'Incremented', data: { by: (from + i) % 7, note: 'a short payload' } }));
  for (let from = 0; from < n; from += BATCH_SIZE) {
    const count = Math.min(BATCH_SIZE, n - from);
    await store.append('big-stream', events(from, count), { expectedVersion: from });
    await pool.query(
      `INSERT INTO ${raw}.raw_events (stream_id, version, type, data, metadata)
       SELECT 'big-stream', v, 'Incremented', d, '{}' FROM unnest($1::bigint[], $2::json[]) AS u(v, d)`,
      [Array.from({ length: count }, (_, i) => from + i + 1), events(from, count).map((e) => JSON.stringify(e.data))],
    );
  }
  const best = async (fn: () => Promise<number>): Promise<number> => {
    let min = Infinity;
    for (let round = 0; round < 3; round++) {
      let total = 0;
      const seconds = await timed(async () => {
        total = await fn();
      });
      if (total !== expectedTotal) throw new Error(`fold mismatch: ${total} vs ${expectedTotal}`);
      min = Math.min(min, seconds);
    }
    return min;
  };
  let expectedTotal = 0;
  for (let i = 0; i < n; i++) expectedTotal += i % 7;
  const library = await best(async () => {
    let total = 0;
    for await (const page of store.readStream('big-stream').pages()) {
      for (const e of page) total += (e.data as { by: number }).by;
    }
    return total;
  });
  const baseline = await best(async () => {
    // What a hand-written loader needs: the version (for its next expected version), the type
    // (to dispatch on) and the data.
    const result = await pool.query<{ version: string; type: string; data: { by: number } }>(
      `SELECT version, type, data FROM ${raw}.raw_events WHERE stream_id = $1 ORDER BY version`,
      ['big-stream'],
    );
    let total = 0;
    for (const row of result.rows) total += row.data.by;
    return total;
  });
  rows.push({
    name: `rehydrate a ${n.toLocaleString('en')}-event stream (readStream pages + fold; raw: one SELECT version, type, data + fold)`,
    unit: 'events/s',
    library: n / library,
    baseline: n / baseline,
    goal: '≥ 0.8×',
  });
}

/** (c) 100,000 events in appends of 1,000, vs one unnest INSERT per 1,000 rows. */
async function batchAppends(): Promise<void> {
  const n = BATCH_EVENTS;
  const batches = Math.ceil(n / BATCH_SIZE);
  const data = Array.from({ length: BATCH_SIZE }, (_, i) => ({ by: i % 7, note: 'a short payload' }));
  const library = await timed(async () => {
    for (let b = 0; b < batches; b++) {
      await store.append(`batch-${b}`, data.map((d) => ({ type: 'Incremented', data: d })), { expectedVersion: 'no-stream' });
    }
  });
  const baseline = await timed(async () => {
    for (let b = 0; b < batches; b++) {
      await pool.query(
        `INSERT INTO ${raw}.raw_events (stream_id, version, type, data, metadata)
         SELECT $1, v, 'Incremented', d, '{}' FROM unnest($2::bigint[], $3::json[]) AS u(v, d)`,
        [`rawbatch-${b}`, data.map((_, i) => i + 1), data.map((d) => JSON.stringify(d))],
      );
    }
  });
  rows.push({
    name: `batch append ${n.toLocaleString('en')} events in appends of ${BATCH_SIZE}`,
    unit: 'events/s',
    library: (batches * BATCH_SIZE) / library,
    baseline: (batches * BATCH_SIZE) / baseline,
    goal: '≥ 0.5× (unnest INSERT)',
  });
}

/** (d) Replay the whole log through readAll, sampling RSS per page. */
async function replay(): Promise<void> {
  const have = await store.headPosition();
  const missing = REPLAY_EVENTS - have;
  if (missing > 0) {
    // Filled with plain SQL, one transaction, the way append_events writes rows (the library's own
    // append speed is measured above); positions from the store's sequence.
    await pool.query(
      `INSERT INTO ${raw}.events (position, stream_id, version, event_id, type, data, metadata, recorded_at, transaction_id)
       SELECT nextval('${raw}.events_position_seq'), 'fill-' || (g / 100), g % 100 + 1, gen_random_uuid(), 'Incremented',
              json_build_object('by', g % 7, 'note', 'a short payload'), '{}', now(), pg_current_xact_id()
         FROM generate_series(0, $1::int - 1) AS g`,
      [missing],
    );
  }
  const total = await store.headPosition();
  gc();
  const rssBefore = process.memoryUsage().rss;
  let peak = rssBefore;
  let count = 0;
  let sum = 0;
  const seconds = await timed(async () => {
    for await (const page of store.readAll().pages()) {
      for (const e of page) sum += (e.data as { by: number }).by;
      count += page.length;
      const rss = process.memoryUsage().rss;
      if (rss > peak) peak = rss;
    }
  });
  if (count !== total || sum <= 0) throw new Error(`replay read ${count} of ${total} events`);
  rows.push({
    name: `replay ${count.toLocaleString('en')} events through readAll`,
    unit: 'events/s',
    library: count / seconds,
    baseline: undefined,
    goal: 'peak RSS < 200 MB',
    note: `peak RSS ${(peak / 2 ** 20).toFixed(0)} MB (${(rssBefore / 2 ** 20).toFixed(0)} MB before)`,
  });
}

function format(n: number): string {
  return Math.round(n).toLocaleString('en');
}

function printTable(): void {
  const { rows: version } = { rows: [serverVersion] };
  console.log(`\nPostgreSQL adapter benchmark — ${version[0]}, node ${process.version}, scale ${SCALE}\n`);
  console.log('| benchmark | library | raw pg baseline | ratio | goal |');
  console.log('|---|---:|---:|---:|---|');
  for (const row of rows) {
    const ratio = row.baseline === undefined ? '—' : `${(row.library / row.baseline).toFixed(2)}×`;
    const base = row.baseline === undefined ? '—' : `${format(row.baseline)} ${row.unit}`;
    console.log(
      `| ${row.name} | ${format(row.library)} ${row.unit} | ${base} | ${ratio} | ${row.goal}${row.note ? `; ${row.note}` : ''} |`,
    );
  }
}

let serverVersion = '';
const started = Date.now();
try {
  serverVersion = (await pool.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows[0]!.v;
  serverVersion = `PostgreSQL ${serverVersion}`;
  await setup();
  const only = process.env.BENCH_ONLY?.split(',');
  const want = (name: string) => only === undefined || only.includes(name);
  if (want('group1')) await groupAppends(1);
  if (want('group16')) await groupAppends(16);
  if (want('group64')) await groupAppends(64);
  if (want('append16')) await singleAppends(16, ['in-transaction', 'off']);
  if (want('rehydrate')) await rehydrate();
  if (want('batch')) await batchAppends();
  if (want('replay')) await replay();
  printTable();
  for (const note of latencyNotes) console.log(`\n${note}`);
  console.log(`\ntotal ${((Date.now() - started) / 1000).toFixed(0)} s`);
} finally {
  await pool.query(`DROP SCHEMA IF EXISTS ${raw} CASCADE`);
  for (const s of Object.values(storesByNotify)) await s.close();
  await store.close();
  await pool.end();
}
