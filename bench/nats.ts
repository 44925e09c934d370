/**
 * NATS JetStream adapter, each figure beside a raw baseline measured in the same run:
 * - append one event with an expected version, concurrency 1 and 16, on a single node and on a
 *   3-node cluster with 3 replicas, against a raw JetStream publish with the same expected-sequence
 *   header (and the same retry on a refusal) awaiting its ack;
 * - rehydrate a 100,000-event stream (one message per event) against a raw subject-filtered
 *   ordered consumer read + JSON.parse + fold;
 * - projection catch-up from NATS into a SQLite read model (library runner, exactly-once target)
 *   beside the SQLite → SQLite catch-up of the same events.
 * Starts its own nats-server nodes (the machine's binary) on free loopback ports.
 *
 *   node --expose-gc --import tsx bench/nats.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream, jetstreamManager, JetStreamApiError, type JetStreamClient } from '@nats-io/jetstream';
import { defineProjection, ProjectionRunner } from '../src/index.js';
import type { Event } from '../src/events/types.js';
import { NatsEventStore, natsWakeUps, type NatsEventStoreOptions } from '../src/nats/index.js';
import { COUNT_HEADER, PREV_HEADER, VERSION_HEADER, encodePayload } from '../src/nats/codec.js';
import { prepareEvents } from '../src/events/validation.js';
import { SqliteEventStore } from '../src/sqlite/sqlite-event-store.js';
import { SqliteProjectionLock, SqliteProjectionRunner, SqliteProjectionTarget, type SqliteProjectionContext } from '../src/sqlite/projections.js';
import { startNatsCluster, waitFor, type NatsCluster } from '../test/support/nats-cluster.js';
import { collectGarbage, formatNumber, median, printTable, type Row } from './support/measure.js';

const APPENDS = Number(process.env.BENCH_NATS_APPENDS ?? 2000);
const REHYDRATE_EVENTS = Number(process.env.BENCH_NATS_REHYDRATE ?? 100_000);
const PROJECTION_EVENTS = Number(process.env.BENCH_NATS_PROJECTION ?? 100_000);
const ROUNDS = Number(process.env.BENCH_NATS_ROUNDS ?? 5);

type BenchEvent = Event<'Deposited', { amount: number }> | Event<'Withdrawn', { amount: number }>;
const event = (n: number) => ({ type: 'Deposited', data: { amount: n % 100, note: 'bench' } });

let streamCounter = 0;
const fresh = (tag: string) => ({ stream: `BENCH_${tag}_${++streamCounter}`, subjectPrefix: `bench${streamCounter}` });

// ------------------------------------------------------------------ appends

/** Runs `count` appends per worker and returns the elapsed ms; state carries over between calls. */
type AppendSide = (count: number) => Promise<number>;

/** eventfold: `workers` writers, each on its own stream, each append with its exact expected version. */
async function librarySide(nc: NatsConnection, options: NatsEventStoreOptions, workers: number): Promise<AppendSide> {
  const store = await NatsEventStore.create({ ...options, connection: nc, servers: undefined } as NatsEventStoreOptions);
  const versions = new Array<number>(workers).fill(0);
  return async (count) => {
    const start = performance.now();
    await Promise.all(
      versions.map(async (_, w) => {
        for (let i = 0; i < count; i++) {
          versions[w] = (await store.append(`w-${w}`, [event(i)], { expectedVersion: versions[w]! })).version;
        }
      }),
    );
    return performance.now() - start;
  };
}

/**
 * Raw: the same messages (same payload and headers), published with the same expected-sequence
 * header the store would use (`lastSubjectSequence`, or for replicated streams `lastSequence`),
 * retried with the server's actual sequence when refused, each awaiting its ack.
 */
async function rawSide(nc: NatsConnection, options: NatsEventStoreOptions, workers: number, mode: 'subject' | 'stream'): Promise<AppendSide> {
  const setup = await NatsEventStore.create({ ...options, connection: nc, servers: undefined } as NatsEventStoreOptions);
  await setup.close();
  const js: JetStreamClient = jetstream(nc);
  const prefix = options.subjectPrefix!;
  const lasts = new Array<number>(workers).fill(0);
  const versions = new Array<number>(workers).fill(0);
  let head = 0;
  return async (count) => {
    const start = performance.now();
    await Promise.all(
      lasts.map(async (_, w) => {
        for (let i = 0; i < count; i++) {
          const version = ++versions[w]!;
          const payload = encodePayload(`w-${w}`, version, Date.now(), prepareEvents(`w-${w}`, [event(i)]), [crypto.randomUUID()]);
          const h = headers();
          h.set(VERSION_HEADER, String(version));
          h.set(COUNT_HEADER, '1');
          h.set(PREV_HEADER, String(lasts[w]));
          for (;;) {
            const last = lasts[w]!;
            const expect = mode === 'stream' && last > 0 ? { lastSequence: Math.max(head, last) } : { lastSubjectSequence: last };
            try {
              const ack = await js.publish(`${prefix}.s.w-${w}`, payload, { expect, headers: h, msgID: crypto.randomUUID() });
              lasts[w] = ack.seq;
              head = Math.max(head, ack.seq);
              break;
            } catch (error) {
              const match = error instanceof JetStreamApiError ? /wrong last sequence: (\d+)/.exec(error.message) : null;
              if (match === null || mode !== 'stream') throw error;
              head = Math.max(head, Number(match[1]));
            }
          }
        }
      }),
    );
    return performance.now() - start;
  };
}

async function appendRows(label: string, servers: string[], replicas: number): Promise<Row[]> {
  const nc = await connect({ servers, noAsyncTraces: true });
  const rows: Row[] = [];
  try {
    for (const workers of [1, 16]) {
      const base = { servers, replicas, storage: 'file' as const };
      const lib = await librarySide(nc, { ...base, ...fresh('lib') }, workers);
      const raw = await rawSide(nc, { ...base, ...fresh('raw') }, workers, replicas > 1 ? 'stream' : 'subject');
      // Warm both, then alternate short chunks so both sides meet the same machine load.
      await lib(20);
      await raw(20);
      const chunk = Math.max(1, Math.round(APPENDS / workers / 10));
      let libMs = 0;
      let rawMs = 0;
      for (let i = 0; i < ROUNDS * 2; i++) {
        if (i % 2 === 0) {
          libMs += await lib(chunk);
          rawMs += await raw(chunk);
        } else {
          rawMs += await raw(chunk);
          libMs += await lib(chunk);
        }
      }
      const total = chunk * workers * ROUNDS * 2;
      const l = total / (libMs / 1000);
      const r = total / (rawMs / 1000);
      rows.push({
        workload: `append 1 event, expected version, ${label}, concurrency ${workers} (appends/s)`,
        eventfold: formatNumber(l),
        baseline: formatNumber(r),
        ratio: (l / r).toFixed(2),
        goal: '≥ 0.8×',
        met: l / r >= 0.8,
      });
    }
  } finally {
    await nc.close();
  }
  return rows;
}

// ------------------------------------------------------------------ rehydrate

/** Seeds `count` one-event messages on one stream, pipelined, in the store's format. */
async function seedStream(nc: NatsConnection, options: NatsEventStoreOptions, streamId: string, count: number, streams = 1): Promise<void> {
  const setup = await NatsEventStore.create({ ...options, connection: nc, servers: undefined } as NatsEventStoreOptions);
  await setup.close();
  const js = jetstream(nc);
  const versions = new Array<number>(streams).fill(0);
  const lastSeq = new Array<number>(streams).fill(0);
  let seq = (await (await jetstreamManager(nc)).streams.info(options.stream!)).state.last_seq;
  const window: Promise<unknown>[] = [];
  for (let n = 0; n < count; n++) {
    const s = n % streams;
    const id = streams === 1 ? streamId : `${streamId}-${s}`;
    const version = ++versions[s]!;
    const e = n % 4 === 3 ? { type: 'Withdrawn', data: { amount: n % 100 } } : { type: 'Deposited', data: { amount: n % 100 } };
    const payload = encodePayload(id, version, Date.now(), prepareEvents(id, [e]), [crypto.randomUUID()]);
    const h = headers();
    h.set(VERSION_HEADER, String(version));
    h.set(COUNT_HEADER, '1');
    h.set(PREV_HEADER, String(lastSeq[s]));
    seq++;
    lastSeq[s] = seq;
    window.push(js.publish(`${options.subjectPrefix}.s.${id}`, payload, { headers: h }));
    if (window.length >= 512) await Promise.all(window.splice(0));
  }
  await Promise.all(window);
}

async function rehydrateRow(servers: string[]): Promise<Row> {
  const nc = await connect({ servers });
  const options: NatsEventStoreOptions = { servers, storage: 'file', ...fresh('rehydrate') };
  try {
    await seedStream(nc, options, 'big', REHYDRATE_EVENTS);
    const store = await NatsEventStore.connect(options);
    const js = jetstream(nc);
    const lib: number[] = [];
    const raw: number[] = [];
    for (let round = 0; round < ROUNDS + 1; round++) {
      collectGarbage();
      let start = performance.now();
      let balance = 0;
      let count = 0;
      for await (const page of store.readStream('big').pages()) {
        for (const e of page) {
          const amount = (e.data as { amount: number }).amount;
          balance += e.type === 'Deposited' ? amount : -amount;
          count++;
        }
      }
      if (count !== REHYDRATE_EVENTS) throw new Error(`read ${count} events`);
      const libMs = performance.now() - start;
      collectGarbage();
      start = performance.now();
      const consumer = await js.consumers.get(options.stream!, {
        filter_subjects: `${options.subjectPrefix}.s.big`,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: 1,
      });
      let rawBalance = 0;
      let rawCount = 0;
      outer: for (;;) {
        const batch = await consumer.fetch({ max_messages: 256, expires: 5000 });
        for await (const m of batch) {
          const payload = m.json<{ e: [string, string, { amount: number }, unknown][] }>();
          for (const [, type, data] of payload.e) rawBalance += type === 'Deposited' ? data.amount : -data.amount;
          rawCount += payload.e.length;
          if (m.info.pending === 0) {
            batch.stop();
            break outer;
          }
        }
      }
      await consumer.delete().catch(() => false);
      const rawMs = performance.now() - start;
      if (rawCount !== count || rawBalance !== balance) throw new Error('baseline disagrees');
      if (round > 0) {
        lib.push(REHYDRATE_EVENTS / (libMs / 1000));
        raw.push(REHYDRATE_EVENTS / (rawMs / 1000));
      }
    }
    await store.close();
    const l = median(lib);
    const r = median(raw);
    return {
      workload: `rehydrate a ${REHYDRATE_EVENTS.toLocaleString('en-US')}-event stream, single node (events/s)`,
      eventfold: formatNumber(l),
      baseline: formatNumber(r),
      ratio: (l / r).toFixed(2),
      goal: '≥ 0.8×',
      met: l / r >= 0.8,
    };
  } finally {
    await nc.close();
  }
}

// ------------------------------------------------------------------ projection catch-up

function accountsProjection() {
  return defineProjection<BenchEvent, SqliteProjectionContext>({
    name: 'bench',
    handlers: {
      Deposited: (e, { db }) => upsert(db, e.streamId, e.data.amount),
      Withdrawn: (e, { db }) => upsert(db, e.streamId, -e.data.amount),
    },
    setup: ({ db }) => {
      db.exec('CREATE TABLE IF NOT EXISTS accounts (stream_id TEXT PRIMARY KEY, balance INTEGER NOT NULL, events INTEGER NOT NULL)');
    },
  });
}

const upserts = new WeakMap<SqliteProjectionContext['db'], { run(streamId: string, amount: number): unknown }>();
function upsert(db: SqliteProjectionContext['db'], streamId: string, amount: number): void {
  let statement = upserts.get(db);
  if (statement === undefined) {
    statement = db.prepare<[string, number]>(
      `INSERT INTO accounts (stream_id, balance, events) VALUES (?, ?, 1)
       ON CONFLICT (stream_id) DO UPDATE SET balance = balance + excluded.balance, events = events + 1`,
    );
    upserts.set(db, statement);
  }
  statement.run(streamId, amount);
}

async function projectionRow(servers: string[]): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'eventfold-bench-nats-'));
  const nc = await connect({ servers });
  const options: NatsEventStoreOptions = { servers, storage: 'file', ...fresh('projection') };
  try {
    await seedStream(nc, options, 'account', PROJECTION_EVENTS, 1000);
    const store = await NatsEventStore.connect({ ...options, pageSize: 1000 });
    const natsRates: number[] = [];
    const sqliteRates: number[] = [];
    // The SQLite → SQLite reference: the same events in a SQLite event store, its own runner.
    const source = new SqliteEventStore({ path: join(dir, 'source.sqlite'), synchronous: 'NORMAL' });
    for (let i = 0; i < PROJECTION_EVENTS; i += 1000) {
      const appends = [];
      for (let s = 0; s < 10; s++) {
        appends.push({
          streamId: `account-${(i / 100 + s) % 1000}`,
          events: Array.from({ length: 100 }, (_, j) => {
            const n = i + s * 100 + j;
            return n % 4 === 3 ? { type: 'Withdrawn', data: { amount: n % 100 } } : { type: 'Deposited', data: { amount: n % 100 } };
          }),
          expectedVersion: 'any' as const,
        });
      }
      await source.appendMany(appends);
    }
    for (let round = 0; round < ROUNDS; round++) {
      const target = new SqliteEventStore({ path: join(dir, `nats-${round}.sqlite`), synchronous: 'NORMAL' });
      const runner = new ProjectionRunner({
        store,
        projection: accountsProjection(),
        target: new SqliteProjectionTarget(target),
        lock: new SqliteProjectionLock(target.database),
        wakeUps: natsWakeUps(store),
        batchSize: 1000,
      });
      collectGarbage();
      let start = performance.now();
      await runner.start();
      await runner.waitUntilCaughtUp({ timeoutMs: 600_000 });
      natsRates.push(PROJECTION_EVENTS / ((performance.now() - start) / 1000));
      await runner.stop();
      await target.close();

      const copy = new SqliteEventStore({ path: join(dir, 'source.sqlite'), synchronous: 'NORMAL' });
      const sqliteRunner = new SqliteProjectionRunner(copy, { ...accountsProjection(), name: `bench-${round}` } as ReturnType<typeof accountsProjection>, {
        batchSize: 1000,
      });
      collectGarbage();
      start = performance.now();
      await sqliteRunner.start();
      await sqliteRunner.waitUntilCaughtUp({ timeoutMs: 600_000 });
      sqliteRates.push(PROJECTION_EVENTS / ((performance.now() - start) / 1000));
      await sqliteRunner.stop();
      copy.database.exec('DROP TABLE IF EXISTS accounts');
      await copy.close();
    }
    await source.close();
    await store.close();
    const l = median(natsRates);
    const r = median(sqliteRates);
    return {
      workload: `projection catch-up into SQLite, ${PROJECTION_EVENTS.toLocaleString('en-US')} events (events/s; baseline: SQLite → SQLite)`,
      eventfold: formatNumber(l),
      baseline: formatNumber(r),
      ratio: (l / r).toFixed(2),
      goal: 'reported',
      met: true,
    };
  } finally {
    await nc.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ main

let single: NatsCluster | undefined;
let cluster: NatsCluster | undefined;
// Interrupted: stop the nodes this bench started before leaving.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void Promise.all([single?.stop(), cluster?.stop()]).finally(() => process.exit(130));
  });
}
try {
  single = await startNatsCluster({ size: 1 });
  cluster = await startNatsCluster({ size: 3 });
  for (const c of [single, cluster]) {
    const nc = await connect({ servers: c.servers });
    await waitFor('JetStream', async () => {
      await (await jetstreamManager(nc, { checkAPI: false })).getAccountInfo();
      return true;
    }, 60_000);
    await nc.close();
  }
  const rows: Row[] = [];
  // BENCH_NATS_PARTS=appends,rehydrate,projection runs a subset.
  const parts = (process.env.BENCH_NATS_PARTS ?? 'appends,rehydrate,projection').split(',');
  if (parts.includes('appends')) {
    rows.push(...(await appendRows('single node', single.servers, 1)));
    rows.push(...(await appendRows('3-node cluster R3', cluster.servers, 3)));
  }
  if (parts.includes('rehydrate')) rows.push(await rehydrateRow(single.servers));
  if (parts.includes('projection')) rows.push(await projectionRow(single.servers));
  printTable(`NATS JetStream (nats-server ${process.env.NATS_SERVER_VERSION ?? '2.9'}, file storage; medians of ${ROUNDS} rounds)`, rows);
} finally {
  await single?.stop();
  await cluster?.stop();
}
