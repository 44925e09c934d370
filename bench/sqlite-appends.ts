/**
 * SQLite append benchmarks, part of `bench/sqlite.ts`: (a) one caller, group commit off and on,
 * with latency; (e) 16 concurrent callers in one process. Raw better-sqlite3 alongside.
 */
import { join } from 'node:path';
import { SqliteEventStore } from '../src/sqlite/index.js';
import { fmt, makeEvent, openRaw, SINGLE_PER_STREAM, SINGLE_STREAMS, time, timeAsync, type Row } from './support/sqlite-shared.js';

// ---------------------------------------------------------------------------------------------
// (a) one event per append, with an expected version

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

export async function singleAppends(dir: string): Promise<Row[]> {
  const grouped = new SqliteEventStore({ path: join(dir, 'a-store.db') });
  const ungrouped = new SqliteEventStore({ path: join(dir, 'a-store-off.db'), groupCommit: false });
  const raw = openRaw(join(dir, 'a-raw.db'));
  const insert = raw.prepare('INSERT INTO raw_events (stream_id, version, type, data, metadata) VALUES (?, ?, ?, ?, ?)');
  const ms = { on: 0, off: 0, raw: 0 };
  const latency = { on: [] as number[], off: [] as number[] };
  const timedAppends = (store: SqliteEventStore, into: number[], version: number) =>
    timeAsync(async () => {
      for (let s = 0; s < SINGLE_STREAMS; s++) {
        const start = performance.now();
        await store.append(`account-${s}`, [makeEvent(s)], { expectedVersion: version });
        into.push((performance.now() - start) * 1000);
      }
    });
  // Alternate per round (rotating who goes first) so disk and CPU noise hits every side alike.
  for (let version = 0; version < SINGLE_PER_STREAM; version++) {
    const sides = [
      async () => (ms.on += await timedAppends(grouped, latency.on, version)),
      async () => (ms.off += await timedAppends(ungrouped, latency.off, version)),
      async () =>
        (ms.raw += time(() => {
          for (let s = 0; s < SINGLE_STREAMS; s++) {
            const event = makeEvent(s);
            insert.run(`account-${s}`, version + 1, event.type, JSON.stringify(event.data), '{}');
          }
        })),
    ];
    for (let k = 0; k < sides.length; k++) await sides[(version + k) % sides.length]!();
  }
  await grouped.close();
  await ungrouped.close();
  raw.close();
  const total = SINGLE_STREAMS * SINGLE_PER_STREAM;
  const rate = (m: number) => (total / m) * 1000;
  const describe = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return `p50 ${percentile(sorted, 0.5).toFixed(0)} µs, p99 ${percentile(sorted, 0.99).toFixed(0)} µs`;
  };
  const baseline = `${fmt(rate(ms.raw))} inserts/s (single-row INSERT, UNIQUE(stream_id, version))`;
  return [
    {
      case: `(a) append 1 event with expected version, ${fmt(SINGLE_STREAMS)} streams × ${SINGLE_PER_STREAM}, one caller, group commit off; latency ${describe(latency.off)}`,
      adapter: `${fmt(rate(ms.off))} appends/s`,
      baseline,
      ratio: (rate(ms.off) / rate(ms.raw)).toFixed(2),
      goal: '≥ 0.8',
    },
    {
      case: `(a) same, group commit on (the default); latency ${describe(latency.on)}`,
      adapter: `${fmt(rate(ms.on))} appends/s`,
      baseline,
      ratio: (rate(ms.on) / rate(ms.raw)).toFixed(2),
      goal: `≥ 0.8; on/off ${(rate(ms.on) / rate(ms.off)).toFixed(2)} (goal ≥ 0.9)`,
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// (e) 16 concurrent callers in one process, one event per append with an expected version

const CALLERS = 16;

export async function concurrentAppends(dir: string): Promise<Row[]> {
  const grouped = new SqliteEventStore({ path: join(dir, 'e-store.db') });
  const ungrouped = new SqliteEventStore({ path: join(dir, 'e-store-off.db'), groupCommit: false });
  const raw = openRaw(join(dir, 'e-raw.db'));
  const insert = raw.prepare('INSERT INTO raw_events (stream_id, version, type, data, metadata) VALUES (?, ?, ?, ?, ?)');
  // Caller c owns streams c, c + 16, …; each walks its streams version by version.
  const callers = (append: (stream: number, version: number) => Promise<unknown> | void) =>
    timeAsync(async () => {
      await Promise.all(
        Array.from({ length: CALLERS }, async (_, c) => {
          for (let version = 0; version < SINGLE_PER_STREAM; version++) {
            for (let s = c; s < SINGLE_STREAMS; s += CALLERS) await append(s, version);
          }
        }),
      );
    });
  const ms = { on: [] as number[], off: [] as number[], raw: [] as number[] };
  const rounds = 3;
  for (let round = 0; round < rounds; round++) {
    const sides = [
      async () => ms.on.push(await callers((s, v) => grouped.append(`r${round}-${s}`, [makeEvent(s)], { expectedVersion: v }))),
      async () => ms.off.push(await callers((s, v) => ungrouped.append(`r${round}-${s}`, [makeEvent(s)], { expectedVersion: v }))),
      async () =>
        ms.raw.push(
          await callers(async (s, v) => {
            // The same async caller shape, each INSERT its own transaction (autocommit).
            const event = makeEvent(s);
            insert.run(`r${round}-${s}`, v + 1, event.type, JSON.stringify(event.data), '{}');
          }),
        ),
    ];
    for (let k = 0; k < sides.length; k++) await sides[(round + k) % sides.length]!();
  }
  const stats = grouped.groupCommitStats!;
  await grouped.close();
  await ungrouped.close();
  raw.close();
  const total = SINGLE_STREAMS * SINGLE_PER_STREAM;
  const med = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;
  const rate = (values: number[]) => (total / med(values)) * 1000;
  const baseline = `${fmt(rate(ms.raw))} inserts/s (one transaction per INSERT)`;
  return [
    {
      case: `(e) ${CALLERS} concurrent callers, 1 event per append with expected version, group commit on (${(stats.appends / stats.groups).toFixed(1)} appends per transaction); median of ${rounds} rounds`,
      adapter: `${fmt(rate(ms.on))} appends/s`,
      baseline,
      ratio: (rate(ms.on) / rate(ms.raw)).toFixed(2),
      goal: '≥ 5',
    },
    {
      case: `(e) same, group commit off`,
      adapter: `${fmt(rate(ms.off))} appends/s`,
      baseline,
      ratio: (rate(ms.off) / rate(ms.raw)).toFixed(2),
      goal: '—',
    },
  ];
}
