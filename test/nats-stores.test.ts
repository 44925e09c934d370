import { assertValidStreamId } from '../src/index.js';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ConcurrencyError, type Snapshot } from '../src/index.js';
import {
  decodeStreamToken,
  encodeStreamToken,
  NatsCheckpointStore,
  NatsEventStore,
  NatsSnapshotStore,
  NatsUniqueValues,
  POSITION_STRIDE,
} from '../src/nats/index.js';
import { describeSnapshotStoreConformance } from '../src/testing/index.js';
import { NATS_URL, natsStores, uniqueStreamNames } from './support/nats.js';
import { failure } from './support/failure.js';

const run = promisify(execFile);
const stores = natsStores('stores');
afterAll(() => stores.cleanup());

describeSnapshotStoreConformance('NatsSnapshotStore (JetStream KV)', async () => {
  const events = await stores.create();
  const snapshots = await NatsSnapshotStore.create({ connection: events.connection, bucket: stores.bucket('snap'), storage: 'memory' });
  return { events, snapshots };
}, { framework: { describe, it } });

/** Ids the store accepts at all (no control or invisible formatting characters, no edge spaces). */
function isValidStreamId(id: string): boolean {
  try {
    assertValidStreamId(id);
    return true;
  } catch {
    return false;
  }
}

describe('NatsEventStore on NATS', () => {
  it('maps stream ids to single subject tokens: no wildcard, dot or space reaches a subject, and the mapping is injective', async () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).filter(isValidStreamId), (id) => {
        const token = encodeStreamToken(id);
        expect(token).toMatch(/^[A-Za-z0-9_=-]+$/);
        expect(decodeStreamToken(token)).toBe(id);
      }),
      { numRuns: 300 },
    );
    expect(encodeStreamToken('a.*')).toBe('a=2E=2A');
    expect(encodeStreamToken('>')).toBe('=3E');
    expect(encodeStreamToken('a=b')).not.toBe(encodeStreamToken('a=3Db') === 'a=3Db' ? '' : 'a=b');
    expect(encodeStreamToken('a=3Db')).toBe('a=3D3Db');

    const store = await stores.create();
    // Streams whose raw ids would be wildcards or extra tokens stay separate streams.
    const hostile = ['a.*', 'a.>', '>', '*', 'a.b', 'a b', 'a=2E=2A', 'a'];
    for (const id of hostile) await store.append(id, [{ type: 'T', data: { id } }], { expectedVersion: 'no-stream' });
    for (const id of hostile) {
      const events = await store.readStream(id).toArray();
      expect(events.map((e) => (e.data as { id: string }).id)).toEqual([id]);
      expect(await store.streamVersion(id)).toBe(1);
    }
    const nc = await connect({ servers: NATS_URL });
    try {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.streams.info(store.options.stream, { subjects_filter: '>' });
      const subjects = Object.keys(info.state.subjects ?? {});
      expect(subjects).toHaveLength(hostile.length);
      for (const subject of subjects) {
        expect(subject.startsWith(`${store.options.subjectPrefix}.s.`)).toBe(true);
        expect(subject.slice(store.options.subjectPrefix.length + 3)).toMatch(/^[A-Za-z0-9_=-]+$/);
      }
    } finally {
      await nc.close();
    }
  });

  it('refuses an append larger than the stream accepts as one message with BatchTooLargeError, writing nothing', async () => {
    const store = await stores.create();
    await store.append('big', [{ type: 'Small', data: {} }], { expectedVersion: 'no-stream' });
    const max = await store.maxAppendBytes();
    // Each event is under maxEventBytes (1 MiB) but together, or alone near max_payload, they are not.
    const huge = { type: 'Huge', data: { blob: 'x'.repeat(max - 100) } };
    const error = await failure(() => store.append('big', [huge], { expectedVersion: 1 }));
    expect(error.code).toBe('BATCH_TOO_LARGE');
    expect(error['limit']).toBe(max);
    const halves = [0, 1, 2].map(() => ({ type: 'Half', data: { blob: 'y'.repeat(Math.floor(max / 2.5)) } }));
    expect((await failure(() => store.append('big', halves, { expectedVersion: 1 }))).code).toBe('BATCH_TOO_LARGE');
    expect(await store.streamVersion('big')).toBe(1);
    expect(await store.readAll().toArray()).toHaveLength(1);
  });

  it('refuses appendMany across streams with CapabilityNotSupportedError before writing; one stream works', async () => {
    const store = await stores.create();
    expect(store.capabilities.atomicMultiStreamAppend).toBe(false);
    await store.append('x', [{ type: 'T', data: 1 }], { expectedVersion: 'no-stream' });
    const error = await failure(() =>
      store.appendMany([
        { streamId: 'y', events: [{ type: 'T', data: 2 }], expectedVersion: 'no-stream' },
        { streamId: 'x', events: [], expectedVersion: 1 },
      ]),
    );
    expect(error.code).toBe('CAPABILITY_NOT_SUPPORTED');
    expect(error['capability']).toBe('atomicMultiStreamAppend');
    expect(await store.streamVersion('y')).toBe(0);
    expect(await store.headPosition()).toBe(POSITION_STRIDE); // message 1, index 0
    const [one] = await store.appendMany([{ streamId: 'y', events: [{ type: 'T', data: 3 }], expectedVersion: 'no-stream' }]);
    expect(one!.version).toBe(1);
  });

  it('migrate() is idempotent and refuses a stream with settings that lose events, naming them', async () => {
    const names = uniqueStreamNames('cfg');
    const first = await NatsEventStore.create({ servers: NATS_URL, storage: 'memory', ...names });
    await first.migrate();
    const second = await NatsEventStore.create({ servers: NATS_URL, storage: 'memory', ...names });
    await second.close();
    const other = await failure(() => NatsEventStore.create({ servers: NATS_URL, storage: 'file', ...names }));
    expect(other.code).toBe('NATS_STREAM_INCOMPATIBLE');
    expect(other.message).toContain("storage is 'memory'");
    await first.close();
    const nc = await connect({ servers: NATS_URL });
    try {
      const jsm = await jetstreamManager(nc);
      const bad = uniqueStreamNames('bad');
      await jsm.streams.add({ name: bad.stream, subjects: [`${bad.subjectPrefix}.s.*`], max_msgs_per_subject: 5, storage: 'memory' as never });
      const error = await failure(() => NatsEventStore.create({ servers: NATS_URL, storage: 'memory', ...bad }));
      expect(error.code).toBe('NATS_STREAM_INCOMPATIBLE');
      expect(error.message).toContain('max_msgs_per_subject');
      await jsm.streams.delete(bad.stream);
      await jsm.streams.delete(names.stream);
    } finally {
      await nc.close();
    }
    const missing = await NatsEventStore.connect({ servers: NATS_URL, ...uniqueStreamNames('missing') });
    expect((await failure(() => missing.append('s', [{ type: 'T', data: 1 }], { expectedVersion: 'any' }))).code).toBe('NATS_STREAM_MISSING');
    await missing.close();
    for (const bad of [{ stream: 'a.b' }, { subjectPrefix: 'a.*' }, { subjectPrefix: '>' }, { replicas: 0 }, { replicas: 7 }, { storage: 'disk' }, { pageSize: 0 }]) {
      const error = await failure(() => NatsEventStore.connect({ servers: NATS_URL, ...(bad as object) }));
      expect(error.code, JSON.stringify(bad)).toBe('INVALID_ARGUMENT');
    }
    expect((await failure(() => NatsEventStore.connect({} as never))).code).toBe('INVALID_ARGUMENT');
  });

  it('enforces expected versions in the server: a raw publish that bypasses the store still cannot break a check', async () => {
    const store = await stores.create();
    const result = await store.append('s', [{ type: 'A', data: 1 }], { expectedVersion: 'no-stream' });
    // Another writer (a raw client) appends behind this store's back; the store's cached
    // (version, sequence) is now stale, and only the server can notice.
    const other = await NatsEventStore.connect({ servers: NATS_URL, stream: store.options.stream, subjectPrefix: store.options.subjectPrefix, storage: 'memory' });
    await other.append('s', [{ type: 'B', data: 2 }, { type: 'C', data: 3 }], { expectedVersion: 1 });
    await other.close();
    const conflict = await failure(() => store.append('s', [{ type: 'D', data: 4 }], { expectedVersion: result.version }));
    expect(conflict).toBeInstanceOf(ConcurrencyError);
    expect(conflict['actualVersion']).toBe(3);
    // 'any' and 'stream-exists' renumber after such a refusal.
    const any = await store.append('s', [{ type: 'E', data: 5 }], { expectedVersion: 'any' });
    expect(any.version).toBe(4);
    // A message published without the expected-sequence header by someone else is refused by nothing
    // but cannot fake an eventfold message either: it lacks the headers, and reads say so.
    const nc = await connect({ servers: NATS_URL });
    try {
      const js = jetstream(nc);
      const ack = await js.publish(`${store.options.subjectPrefix}.s.s`, '{}', { expect: { lastSubjectSequence: 1 } }).catch((e: Error) => e);
      expect(ack).toBeInstanceOf(Error); // wrong last sequence: the server refuses stale writers
    } finally {
      await nc.close();
    }
    expect((await store.readStream('s').toArray()).map((e) => e.version)).toEqual([1, 2, 3, 4]);
  });

  it('writers in separate processes: every win is in the stream once, versions gapless, every conflict names the real version', async () => {
    const store = await stores.create();
    const { stream, subjectPrefix } = store.options;
    const contender = fileURLToPath(new URL('./fixtures/nats-contender.ts', import.meta.url));
    const root = fileURLToPath(new URL('..', import.meta.url));
    const outputs = await Promise.all(
      ['w0', 'w1', 'w2'].map((w) => run(process.execPath, ['--import', 'tsx', contender, NATS_URL, stream, subjectPrefix, w, '25'], { cwd: root })),
    );
    const reports = outputs.map((o) => JSON.parse(o.stdout) as { writer: string; wins: number[]; conflicts: { expected: number; actual: number }[] });
    const events = await store.readStream('contended').toArray();
    const wins = reports.flatMap((r) => r.wins);
    expect(events).toHaveLength(wins.length * 2);
    expect(events.map((e) => e.version)).toEqual(events.map((_, i) => i + 1));
    expect(new Set(wins).size).toBe(wins.length);
    for (const report of reports) {
      const mine = events.filter((e) => (e.data as { writer: string }).writer === report.writer);
      expect(mine).toHaveLength(report.wins.length * 2);
      for (const version of report.wins) expect((events[version - 1]!.data as { writer: string }).writer).toBe(report.writer);
      for (const { expected, actual } of report.conflicts) {
        expect(actual).toBeGreaterThan(expected);
        expect(actual % 2).toBe(0); // a real version the stream had: appends carry two events
      }
    }
    expect(reports.reduce((n, r) => n + r.conflicts.length, 0) + wins.length).toBe(75);
  }, 120_000);
});

describe('NatsCheckpointStore', () => {
  it('is a server-enforced compare-and-set', async () => {
    const events = await stores.create();
    const checkpoints = new NatsCheckpointStore({ connection: events.connection, bucket: stores.bucket('cp'), storage: 'memory' });
    expect(await checkpoints.load('users')).toBeUndefined();
    await checkpoints.save('users', undefined, { position: 10, version: 1 });
    expect(await checkpoints.load('users')).toEqual({ position: 10, version: 1 });
    const conflict = await failure(() => checkpoints.save('users', undefined, { position: 20, version: 1 }));
    expect(conflict.code).toBe('PROJECTION_CHECKPOINT_CONFLICT');
    // Two runners racing from the same checkpoint: exactly one wins.
    const race = await Promise.allSettled(
      [30, 40, 50].map((position) => checkpoints.save('users', { position: 10, version: 1 }, { position, version: 1 })),
    );
    expect(race.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    await checkpoints.delete('users');
    expect(await checkpoints.load('users')).toBeUndefined();
    await checkpoints.save('users', undefined, { position: 1, version: 2 });
    expect(await checkpoints.load('users')).toEqual({ position: 1, version: 2 });
    await checkpoints.save('odd name: ü.*>', undefined, { position: 1, version: 1 });
    expect(await checkpoints.load('odd name: ü.*>')).toEqual({ position: 1, version: 1 });
  });
});

describe('NatsUniqueValues', () => {
  it('one owner per value under racing reservations; release only by the owner; orphans reclaimed only when stale and not held', async () => {
    const events = await stores.create();
    const held = new Set<string>();
    const bucket = stores.bucket('uniq');
    const isHeld = async (_scope: string, _value: string, owner: string) => held.has(owner);
    // Racing registrations: reservations are fresh, so none is reclaimed even though no event is written yet.
    const racing = new NatsUniqueValues({ connection: events.connection, bucket, storage: 'memory', isHeld });
    const outcomes = await Promise.allSettled(['u1', 'u2', 'u3', 'u4'].map((owner) => racing.reserve('user name', 'alice', owner)));
    const winners = outcomes.flatMap((o, i) => (o.status === 'fulfilled' ? [`u${i + 1}`] : []));
    expect(winners).toHaveLength(1);
    for (const o of outcomes) if (o.status === 'rejected') expect((o.reason as { code: string }).code).toBe('UNIQUE_VALUE_TAKEN');
    const owner = winners[0]!;
    // Later, with reservations old enough to be checked against the streams.
    const unique = new NatsUniqueValues({ connection: events.connection, bucket, storage: 'memory', staleAfterMs: 0, isHeld });
    expect(await unique.ownerOf('user name', 'alice')).toBe(owner);
    await unique.reserve('user name', 'alice', owner); // idempotent
    held.add(owner);
    expect((await failure(() => unique.reserve('user name', 'alice', 'late'))).code).toBe('UNIQUE_VALUE_TAKEN');
    expect(await unique.release('user name', 'alice', 'not-the-owner')).toBe(false);
    expect(await unique.ownerOf('user name', 'alice')).toBe(owner);
    // The owner's process died before writing its events: the streams say it does not hold it.
    held.delete(owner);
    await unique.reserve('user name', 'alice', 'rescuer');
    expect(await unique.ownerOf('user name', 'alice')).toBe('rescuer');
    expect(await unique.release('user name', 'alice', 'rescuer')).toBe(true);
    expect(await unique.ownerOf('user name', 'alice')).toBeUndefined();
    await unique.reserve('user name', 'alice', 'next');
    expect(await unique.ownerOf('user name', 'alice')).toBe('next');
  });

  it('never reclaims a fresh reservation (one whose registration may still be under way)', async () => {
    const events = await stores.create();
    const unique = new NatsUniqueValues({
      connection: events.connection,
      bucket: stores.bucket('uniq2'),
      storage: 'memory',
      staleAfterMs: 60_000,
      isHeld: async () => false,
    });
    await unique.reserve('email', 'a@example.com', 'first');
    expect((await failure(() => unique.reserve('email', 'a@example.com', 'second'))).code).toBe('UNIQUE_VALUE_TAKEN');
  });
});

// Keeps the type import used when the suite above is the only user.
export type { Snapshot };
