import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AtLeastOnceTarget,
  CapabilityNotSupportedError,
  defineProjection,
  InMemoryCheckpointStore,
  InMemoryProjectionLock,
  InvalidArgumentError,
  LifecycleEventStore,
  ProjectionRunner,
  StreamNotFoundError,
  type RecordedEvent,
} from '../src/index.js';
import { NatsEventStore, NatsSnapshotStore, NatsStreamConfigError, NatsStreamPruning } from '../src/nats/index.js';
import { natsStores, NATS_URL } from './support/nats.js';

const stores = natsStores('prune', { allowPruning: true, pageSize: 3 });
afterAll(() => stores.cleanup());

const row = (e: RecordedEvent) => [e.streamId, e.version, e.position, e.eventId, e.type, e.data] as const;

describe('NatsStreamPruning', () => {
  it('refuses a stream not created for pruning, which JetStream cannot convert', async () => {
    const plain = natsStores('prune-plain');
    try {
      const store = await plain.create();
      await store.append('s', [{ type: 'A', data: {} }], { expectedVersion: 'no-stream' });
      const error = await new NatsStreamPruning(store).truncateBefore('s', 1).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CapabilityNotSupportedError);
      expect((error as Error).message).toMatch(/allowPruning/);
      await expect(NatsEventStore.create({ servers: NATS_URL, storage: 'memory', stream: store.options.stream, subjectPrefix: store.options.subjectPrefix, allowPruning: true })).rejects.toBeInstanceOf(
        NatsStreamConfigError,
      );
      await store.close();
    } finally {
      await plain.cleanup();
    }
  });

  it('refuses bad input with typed errors before anything is written', async () => {
    await expect(NatsEventStore.connect({ servers: NATS_URL, allowPruning: 'yes' as never })).rejects.toBeInstanceOf(InvalidArgumentError);
    const store = await stores.create();
    await store.append('s', [{ type: 'A', data: {} }, { type: 'A', data: {} }], { expectedVersion: 'no-stream' });
    const pruning = new NatsStreamPruning(store);
    const head = await store.headPosition();
    for (const version of [0, -1, 1.5, Number.NaN, '2' as never]) {
      await expect(pruning.truncateBefore('s', version)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
    await expect(pruning.truncateBefore('s', 3)).rejects.toThrow(/would remove all/);
    await expect(pruning.truncateBefore('', 1)).rejects.toMatchObject({ code: 'INVALID_STREAM_ID' });
    await expect(pruning.purgeDeletedStream('missing')).rejects.toBeInstanceOf(StreamNotFoundError);
    await expect(pruning.purgeDeletedStream('s')).rejects.toThrow(/tombstone it/);
    expect(() => new NatsStreamPruning(store, { snapshotBucket: 'bad.name' })).toThrow(InvalidArgumentError);
    expect(await store.headPosition()).toBe(head);
    expect((await store.readStream('s').toArray()).map((e) => e.type)).toEqual(['A', 'A']);
  });

  it.each(['subject', 'stream'] as const)("a store that knew the replaced last message appends at the exact version (expectedSequence '%s')", async (mode) => {
    const store = await stores.create({ expectedSequence: mode });
    await store.append('s', [{ type: 'A', data: { n: 1 } }, { type: 'A', data: { n: 2 } }], { expectedVersion: 'no-stream' });
    // The last message is rewritten: a marker takes its place at the end of the stream, which
    // this store's remembered head does not know about.
    expect(await new NatsStreamPruning(store).truncateBefore('s', 2)).toEqual({ removedEvents: 1 });
    const next = await store.append('s', [{ type: 'A', data: { n: 3 } }], { expectedVersion: 2 });
    expect(next.version).toBe(3);
    await expect(store.append('s', [{ type: 'A', data: {} }], { expectedVersion: 2 })).rejects.toMatchObject({ code: 'CONCURRENCY_CONFLICT', actualVersion: 3 });
    expect((await store.readStream('s').toArray()).map((e) => [e.version, e.type])).toEqual([
      [1, '$Pruned'],
      [2, 'A'],
      [3, 'A'],
    ]);
  });

  it('reads that run while pruning erases messages see every version once, as it was or as a placeholder', async () => {
    const store = await stores.create();
    const reader = await NatsEventStore.connect({ servers: NATS_URL, stream: store.options.stream, subjectPrefix: store.options.subjectPrefix, pageSize: 2 });
    try {
      // Every event's data names its stream and version, so any read can be checked on its own.
      const event = (streamId: string, version: number) => ({ type: 'E', data: { streamId, version } });
      let s = 0;
      for (let i = 0; i < 12; i++) {
        if (i % 4 === 0) await store.append('other', [event('other', i / 4 + 1)], { expectedVersion: i / 4 });
        else await store.append('s', [event('s', ++s)], { expectedVersion: s - 1 });
      }
      const valid = (events: readonly RecordedEvent[], streamId?: string) => {
        for (const e of events) expect(e.data).toEqual(e.type === '$Pruned' ? null : { streamId: e.streamId, version: e.version });
        for (const id of streamId === undefined ? ['s', 'other'] : [streamId]) {
          const versions = events.filter((e) => e.streamId === id).map((e) => e.version);
          expect(versions).toEqual(Array.from({ length: versions.length }, (_, i) => i + 1));
        }
        const positions = events.map((e) => e.position);
        expect(positions).toEqual([...positions].sort((a, b) => a - b));
      };
      let pruning = true;
      let reads = 0;
      const readers = [0, 1].map(async () => {
        while (pruning) {
          // Every version appended before the read began must be there (none lost at the end).
          let atLeast = s;
          const stream = await reader.readStream('s').toArray();
          expect(stream.length).toBeGreaterThanOrEqual(atLeast);
          valid(stream, 's');
          atLeast = s;
          const all = await reader.readAll().toArray();
          expect(all.filter((e) => e.streamId === 'other')).toHaveLength(3);
          expect(all.filter((e) => e.streamId === 's').length).toBeGreaterThanOrEqual(atLeast);
          valid(all);
          atLeast = s;
          const backwards = await reader.readStream('s', { backwards: true }).toArray();
          expect(backwards.length).toBeGreaterThanOrEqual(atLeast);
          valid([...backwards].reverse(), 's');
          reads++;
        }
      });
      const pruner = (async () => {
        try {
          const pruneAll = new NatsStreamPruning(store);
          // Each round prunes inside the stream's last message, which a marker then replaces.
          for (let round = 0; round < 12; round++) {
            await store.append('s', [event('s', s + 1), event('s', s + 2), event('s', s + 3)], { expectedVersion: s });
            s += 3;
            await pruneAll.truncateBefore('s', s);
          }
        } finally {
          pruning = false;
        }
      })();
      await Promise.all([pruner, ...readers]);
      expect(reads).toBeGreaterThan(0);
      const after = await reader.readStream('s').toArray();
      expect(after.map((e) => e.type)).toEqual([...Array.from({ length: s - 1 }, () => '$Pruned'), 'E']);
    } finally {
      await reader.close();
    }
  });

  it("purges a deleted stream's snapshots, and rewrites an append that holds the tombstone", async () => {
    const store = await stores.create();
    const bucket = stores.bucket('snap');
    const snapshots = await NatsSnapshotStore.create({ connection: store.connection, bucket, storage: 'memory' });
    // One append with the tombstone in it: the stream's last message must be rewritten.
    await store.append('acct', [{ type: 'Opened', data: { owner: 'ann' } }], { expectedVersion: 'no-stream' });
    await snapshots.save({ streamId: 'acct', version: 1, schemaVersion: 1, state: { owner: 'ann' }, takenAt: new Date() });
    await new LifecycleEventStore(store).appendMany([
      { streamId: 'acct', expectedVersion: 1, events: [{ type: 'Closed', data: { owner: 'ann' } }, { type: '$StreamDeleted', data: { reason: null } }] },
    ]);
    const pruning = new NatsStreamPruning(store, { snapshotBucket: bucket });
    expect(await pruning.purgeDeletedStream('acct')).toEqual({ removedEvents: 2 });
    expect(await snapshots.load('acct')).toBeUndefined();
    expect((await store.readStream('acct').toArray()).map((e) => [e.version, e.type, e.data])).toEqual([
      [1, '$Pruned', null],
      [2, '$Pruned', null],
      [3, '$StreamDeleted', { reason: null }],
    ]);
    expect(await store.streamVersion('acct')).toBe(3);
    expect(await new LifecycleEventStore(store).streamState('acct')).toMatchObject({ status: 'deleted', version: 3 });
  });

  it('a projection rebuilt after pruning sees what the lifecycle layer shows; the head stays a real position', async () => {
    const store = await stores.create();
    const layered = new LifecycleEventStore(store);
    for (let i = 0; i < 6; i++) await layered.append(`acct-${i % 3}`, [{ type: 'Deposited', data: { amount: i + 1 } }], { expectedVersion: 'any' });
    // The log's last message is rewritten: a marker with no events ends the log.
    await layered.append('acct-0', [{ type: 'Deposited', data: { amount: 100 } }, { type: 'Deposited', data: { amount: 1000 } }], { expectedVersion: 'any' });
    const pruning = new NatsStreamPruning(store);
    expect(await pruning.truncateBefore('acct-0', 4)).toEqual({ removedEvents: 3 });
    const raw = await store.readAll().toArray();
    expect(raw.filter((e) => e.type === '$Pruned').map((e) => [e.streamId, e.version])).toEqual([
      ['acct-0', 1],
      ['acct-0', 2],
      ['acct-0', 3],
    ]);
    expect(await store.headPosition()).toBe(raw[raw.length - 1]!.position);

    const balances = new Map<string, number>();
    const projection = defineProjection<{ type: 'Deposited'; data: { amount: number } }, Map<string, number>>({
      name: 'balances',
      handlers: { Deposited: (e, map) => void map.set(e.streamId, (map.get(e.streamId) ?? 0) + e.data.amount) },
      reset: (map) => void map.clear(),
    });
    const checkpoints = new InMemoryCheckpointStore();
    const runner = new ProjectionRunner({
      store: layered,
      projection,
      target: new AtLeastOnceTarget({ checkpoints, context: () => balances }),
      lock: new InMemoryProjectionLock(),
      batchSize: 2,
    });
    await runner.start();
    try {
      await runner.waitUntilCaughtUp({ timeoutMs: 20_000 });
      const expected = { 'acct-0': 1000, 'acct-1': 2 + 5, 'acct-2': 3 + 6 };
      expect(Object.fromEntries(balances)).toEqual(expected);
      await runner.rebuild({ timeoutMs: 20_000 });
      expect(Object.fromEntries(balances)).toEqual(expected);
      expect((await checkpoints.load('balances'))?.position).toBe(await store.headPosition());
      // Appends after the pruning reach the projection.
      await layered.append('acct-0', [{ type: 'Deposited', data: { amount: 7 } }], { expectedVersion: 4 });
      await runner.waitUntilCaughtUp({ timeoutMs: 20_000 });
      expect(balances.get('acct-0')).toBe(1007);
    } finally {
      await runner.stop();
    }
  });
});

const ops = fc.array(
  fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('append' as const), stream: fc.integer({ min: 0, max: 2 }), count: fc.integer({ min: 1, max: 3 }) }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('truncate' as const), stream: fc.integer({ min: 0, max: 2 }), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('purge' as const), stream: fc.integer({ min: 0, max: 2 }) }) },
  ),
  { minLength: 1, maxLength: 14 },
);

describe.each(['subject', 'stream'] as const)("pruning property (expectedSequence '%s')", (mode) => {
  it('every read path matches a model where pruned events are placeholders; appends go on at exact versions', async () => {
    await fc.assert(
      fc.asyncProperty(ops, async (plan) => {
        const store = await stores.create({ expectedSequence: mode });
        const pruning = new NatsStreamPruning(store);
        const layered = new LifecycleEventStore(store);
        const model: RecordedEvent[] = [];
        const version = (s: string) => model.filter((e) => e.streamId === s).length;
        const deleted = new Set<string>();
        for (const op of plan) {
          const streamId = `s-${op.stream}`;
          const at = version(streamId);
          if (op.kind === 'append') {
            if (deleted.has(streamId)) continue;
            const events = Array.from({ length: op.count }, (_, i) => ({ type: 'E', data: { n: at + i + 1, secret: randomUUID() } }));
            const result = await layered.append(streamId, events, { expectedVersion: at === 0 ? 'no-stream' : at });
            model.push(...result.events);
          } else if (op.kind === 'truncate') {
            if (at === 0 || deleted.has(streamId)) continue;
            const below = 1 + Math.floor(op.fraction * (at - 1));
            const expected = model.filter((e) => e.streamId === streamId && e.version < below && e.type !== '$Pruned').length;
            expect(await pruning.truncateBefore(streamId, below)).toEqual({ removedEvents: expected });
            prune(model, streamId, below);
            // Straight to the store, whose remembered head may be a message the pruning replaced.
            const result = await store.append(streamId, [{ type: 'E', data: { n: at + 1 } }], { expectedVersion: at });
            model.push(...result.events);
          } else {
            if (at === 0 || deleted.has(streamId)) continue;
            const tomb = await layered.tombstone(streamId);
            model.push(...tomb.events);
            const expected = model.filter((e) => e.streamId === streamId && e.type === 'E').length;
            expect(await pruning.purgeDeletedStream(streamId)).toEqual({ removedEvents: expected });
            prune(model, streamId, tomb.version);
            deleted.add(streamId);
          }
        }
        model.sort((a, b) => a.position - b.position);
        expect((await store.readAll().toArray()).map(row)).toEqual(model.map(row));
        if (model.length > 1) {
          const from = model[Math.floor(model.length / 2)]!.position;
          expect((await store.readAll({ fromPosition: from }).toArray()).map(row)).toEqual(model.filter((e) => e.position >= from).map(row));
        }
        expect(await store.headPosition()).toBe(model.length === 0 ? 0 : model[model.length - 1]!.position);
        for (const streamId of ['s-0', 's-1', 's-2']) {
          const mine = model.filter((e) => e.streamId === streamId);
          expect(await store.streamVersion(streamId)).toBe(mine.length);
          if (mine.length === 0) continue;
          expect((await store.readStream(streamId).toArray()).map(row)).toEqual(mine.map(row));
          expect((await store.readStream(streamId, { backwards: true }).toArray()).map(row)).toEqual([...mine].reverse().map(row));
          const mid = Math.ceil(mine.length / 2);
          expect((await store.readStream(streamId, { fromVersion: mid, limit: 2 }).toArray()).map(row)).toEqual(mine.slice(mid - 1, mid + 1).map(row));
          if (!deleted.has(streamId)) {
            // Exact expected versions still hold after a marker replaced the stream's last message.
            const next = await store.append(streamId, [{ type: 'E', data: { n: mine.length + 1 } }], { expectedVersion: mine.length });
            expect(next.version).toBe(mine.length + 1);
          }
        }
        await store.close();
      }),
      { numRuns: mode === 'subject' ? 12 : 6 },
    );
  }, 180_000);
});

function prune(model: RecordedEvent[], streamId: string, below: number): void {
  for (let i = 0; i < model.length; i++) {
    const e = model[i]!;
    if (e.streamId === streamId && e.version < below) model[i] = { ...e, type: '$Pruned', data: null, metadata: {} } as RecordedEvent;
  }
}
