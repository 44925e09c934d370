/**
 * Where a PostgreSQL append's CPU goes: CPU time per append (the bench's node process plus the
 * server backends serving its pool, read from /proc), for raw code, eventfold, and stripped-down
 * steps in between. CPU time per append moves less than throughput on a shared, noisy machine,
 * and on a CPU-bound machine throughput follows it. Linux only (reads /proc/<pid>/stat).
 * Run: `node --expose-gc --import tsx bench/postgres-cost.ts` (BENCH_CONCURRENCY, default 16;
 * BENCH_APPENDS per side and round, default 8000; DATABASE_URL overrides the server).
 *
 * The stripped-down steps are diagnostics, not alternatives: they skip checks eventfold must make.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { PostgresEventStore } from '../src/postgres/index.js';
import { median } from './support/measure.js';

const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? '16');
const APPENDS = Number(process.env.BENCH_APPENDS ?? '8000');
const ROUNDS = 3;
const POOL = 20;
const app = `eventfold-cost-${process.pid}`;
const schema = `bench_cost_${process.pid}`;
const s = `"${schema}"`;
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: POOL, idleTimeoutMillis: 0, application_name: app });
pool.on('error', () => {});
const grouped = new PostgresEventStore({ pool, schema });
const ungrouped = new PostgresEventStore({ pool, schema, groupCommit: false });
const data = JSON.stringify({ by: 1, note: 'a short payload' });

type Append = (stream: string, version: number) => Promise<unknown>;

const sides: [string, Append][] = [
  ['raw INSERT (one row, autocommit)', (stream, v) =>
    pool.query({ name: 'raw', text: `INSERT INTO ${s}.raw_events (stream_id, version, type, data, metadata) VALUES ($1, $2, $3, $4, $5)`, values: [stream, v + 1, 'Incremented', data, '{}'] })],
  ['raw INSERT inside a PL/pgSQL function', (stream, v) =>
    pool.query({ name: 'raw_fn', text: `SELECT * FROM ${s}.raw_fn($1, $2, $3, $4)`, values: [stream, v + 1, data, '{}'] })],
  ["INSERT into eventfold's events table (no checks, locks or gap safety)", (stream, v) =>
    pool.query({
      name: 'direct',
      text: `INSERT INTO ${s}.events (position, stream_id, version, event_id, type, data, metadata, recorded_at, transaction_id)
             VALUES (nextval('${s}.events_position_seq'), $1, $2, $3, $4, $5, $6, $7, pg_current_xact_id()) RETURNING position`,
      values: [stream, v + 1, randomUUID(), 'Incremented', data, '{}', new Date().toISOString()],
    })],
  ['the same inside a PL/pgSQL function', (stream, v) =>
    pool.query({ name: 'bare_fn', text: `SELECT * FROM ${s}.bare_fn($1, $2, $3, $4, $5, $6, $7)`, values: [stream, v + 1, randomUUID(), 'Incremented', data, '{}', new Date().toISOString()] })],
  ['eventfold append, group commit off', (stream, v) => ungrouped.append(stream, [{ type: 'Incremented', data: { by: 1, note: 'a short payload' } }], { expectedVersion: v })],
  ['eventfold append, group commit on (default)', (stream, v) => grouped.append(stream, [{ type: 'Incremented', data: { by: 1, note: 'a short payload' } }], { expectedVersion: v })],
];

async function setup(): Promise<number[]> {
  await grouped.migrate();
  await pool.query(`
    CREATE TABLE ${s}.raw_events (
      position bigserial PRIMARY KEY, stream_id text NOT NULL, version bigint NOT NULL, type text NOT NULL,
      data json NOT NULL, metadata json NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now(), UNIQUE (stream_id, version));
    CREATE FUNCTION ${s}.raw_fn(p_s text, p_v bigint, p_d json, p_m json, OUT pos bigint) LANGUAGE plpgsql AS $f$
    BEGIN
      INSERT INTO ${s}.raw_events (stream_id, version, type, data, metadata) VALUES (p_s, p_v, 'Incremented', p_d, p_m) RETURNING position INTO pos;
    END $f$;
    CREATE FUNCTION ${s}.bare_fn(p_s text, p_v bigint, p_id uuid, p_t text, p_d json, p_m json, p_at timestamptz, OUT pos bigint) LANGUAGE plpgsql AS $f$
    BEGIN
      INSERT INTO ${s}.events (position, stream_id, version, event_id, type, data, metadata, recorded_at, transaction_id)
      VALUES (nextval('${s}.events_position_seq'), p_s, p_v, p_id, p_t, p_d, p_m, p_at, pg_current_xact_id()) RETURNING position INTO pos;
    END $f$;`);
  // Open every connection of the pool, so that all the backends serving it are known.
  await Promise.all(Array.from({ length: POOL }, () => pool.query('SELECT pg_sleep(0.05)')));
  const { rows } = await pool.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [app]);
  return rows.map((row) => row.pid);
}

const TICK_US = 10_000; // USER_HZ is 100 on Linux
function backendMicros(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks * TICK_US;
}

interface Sample {
  readonly node: number;
  readonly backend: number;
}

async function measure(pids: readonly number[], tag: string, append: Append): Promise<Sample> {
  let started = 0;
  const backend0 = backendMicros(pids);
  const node0 = process.cpuUsage();
  // Each caller walks its own 25 streams version by version, so every expected version is exact.
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, caller) => {
      for (let version = 0; started < APPENDS; version++) {
        for (let k = 0; k < 25 && started < APPENDS; k++) {
          started++;
          await append(`${tag}-${caller}-${k}`, version);
        }
      }
    }),
  );
  const node = process.cpuUsage(node0);
  return { node: (node.user + node.system) / APPENDS, backend: (backendMicros(pids) - backend0) / APPENDS };
}

try {
  const pids = await setup();
  const samples = sides.map((): Sample[] => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < sides.length; k++) {
      const i = (k + round) % sides.length;
      samples[i]!.push(await measure(pids, `r${round}s${i}`, sides[i]![1]));
    }
  }
  const total = (i: number) => median(samples[i]!.map((x) => x.node + x.backend));
  console.log(`\nCPU per append, concurrency ${CONCURRENCY}, ${APPENDS} appends per side and round, median of ${ROUNDS} interleaved rounds\n`);
  console.log('| what | node µs | server µs | total µs | raw / this |');
  console.log('|---|---:|---:|---:|---:|');
  sides.forEach(([name], i) => {
    const node = median(samples[i]!.map((x) => x.node));
    const backend = median(samples[i]!.map((x) => x.backend));
    console.log(`| ${name} | ${node.toFixed(0)} | ${backend.toFixed(0)} | ${total(i).toFixed(0)} | ${(total(0) / total(i)).toFixed(2)}× |`);
  });
  const stats = grouped.groupCommitStats;
  if (stats !== undefined) console.log(`\ngroup commit: ${(stats.appends / Math.max(1, stats.groups)).toFixed(1)} appends per transaction on average`);
} finally {
  await pool.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  await grouped.close();
  await ungrouped.close();
  await pool.end();
}
