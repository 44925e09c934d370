import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Aggregate,
  AggregateNotFoundError,
  InMemorySnapshotStore,
  isEventfoldError,
  LifecycleEventStore,
  loadAsOf,
  Repository,
  StreamDeletedError,
  StreamNotFoundError,
  versionAt,
  type Event,
  InMemoryEventStore,
  InMemoryStreamPruning,
  type StreamPruning,
} from '../src/index.js';
import { PostgresStreamPruning } from '../src/postgres/index.js';
import { SqliteStreamPruning } from '../src/sqlite/index.js';
import { NatsEventStore, NatsStreamPruning } from '../src/nats/index.js';
import { evolutionStoreKinds } from './fixtures/evolution-stores.js';
import { pgTestDatabase } from './support/postgres.js';
import { failure } from './support/failure.js';

const kinds = evolutionStoreKinds();
const pg = pgTestDatabase({ max: 4 });
afterAll(() => pg.cleanup());

type NoteEvent = Event<'Noted', { n: number }>;
class Notes extends Aggregate<NoteEvent> {
  total = 0;
  protected apply(event: NoteEvent): void {
    this.total += event.data.n;
  }
  toSnapshot() {
    return { total: this.total };
  }
  restoreSnapshot(state: { total: number }) {
    this.total = state.total;
  }
}
const note = (n: number) => ({ type: 'Noted', data: { n } });

describe.each(kinds)('stream lifecycle on the $name store', (kind) => {
  it('a tombstone ends the stream: appends refused, reads say deleted, the log keeps it', async () => {
    const inner = await (await kind.fresh()).open();
    const store = new LifecycleEventStore(inner);
    await store.append('notes-1', [note(1), note(2)], { expectedVersion: 'no-stream' });
    await store.append('notes-2', [note(5)], { expectedVersion: 'no-stream' });
    expect(await store.streamState('notes-1')).toEqual({ status: 'live', version: 2 });
    await expect(store.tombstone('nope')).rejects.toBeInstanceOf(StreamNotFoundError);
    const tomb = await store.tombstone('notes-1', { reason: 'account closed' });
    expect(tomb.version).toBe(3);
    const state = await store.streamState('notes-1');
    expect(state).toMatchObject({ status: 'deleted', version: 3, reason: 'account closed' });
    const head = await inner.headPosition();
    for (const expectedVersion of ['any', 'stream-exists', 3, 2] as const) {
      const error = await failure<unknown>(() => store.append('notes-1', [note(9)], { expectedVersion }));
      expect(error, String(expectedVersion)).toBeInstanceOf(StreamDeletedError);
      expect((error as StreamDeletedError).deletedAtVersion).toBe(3);
    }
    const many = await failure<unknown>(() =>
      store.appendMany([
        { streamId: 'notes-2', events: [note(1)], expectedVersion: 1 },
        { streamId: 'notes-1', events: [note(1)], expectedVersion: 'any' },
      ]),
    );
    expect(isEventfoldError(many, 'STREAM_DELETED')).toBe(true);
    await expect(store.tombstone('notes-1')).rejects.toBeInstanceOf(StreamDeletedError);
    expect(await inner.headPosition()).toBe(head);
    await expect(store.readStream('notes-1').toArray()).rejects.toBeInstanceOf(StreamDeletedError);
    await expect(store.readStream('notes-1', { toVersion: 1 }).toArray()).rejects.toBeInstanceOf(StreamDeletedError);
    await expect(new Repository(store, Notes).load('notes-1')).rejects.toBeInstanceOf(StreamDeletedError);
    const log = await store.readAll().toArray();
    expect(log.filter((e) => e.streamId === 'notes-1').map((e) => e.type)).toEqual(['Noted', 'Noted', '$StreamDeleted']);
    // Other streams are untouched.
    expect((await new Repository(store, Notes).load('notes-2')).total).toBe(5);
  });

  it('property: no event ever follows a tombstone, whatever races it', async () => {
    const inner = await (await kind.fresh()).open();
    const writers = [new LifecycleEventStore(inner), new LifecycleEventStore(inner)];
    let round = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom<'any' | 'stream-exists'>('any', 'stream-exists'), { minLength: 1, maxLength: 8 }),
        fc.nat({ max: 8 }),
        async (appends, tombstoneAt) => {
          const streamId = `race-${++round}`;
          await writers[0]!.append(streamId, [note(0)], { expectedVersion: 'no-stream' });
          const tasks = appends.map((expectedVersion, i) =>
            writers[i % 2]!.append(streamId, [note(i + 1)], { expectedVersion }).then(
              () => 'ok' as const,
              (e: unknown) => e,
            ),
          );
          tasks.splice(Math.min(tombstoneAt, tasks.length), 0, writers[1]!.tombstone(streamId).then(() => 'ok' as const));
          const outcomes = await Promise.all(tasks);
          for (const o of outcomes) if (o !== 'ok') expect(o).toBeInstanceOf(StreamDeletedError);
          const events = await inner.readStream(streamId).toArray();
          expect(events[events.length - 1]!.type).toBe('$StreamDeleted');
          expect(events.filter((e) => e.type === '$StreamDeleted')).toHaveLength(1);
          expect(events.length).toBe(1 + 1 + outcomes.filter((o) => o === 'ok').length - 1);
        },
      ),
      { numRuns: kind.name === 'memory' ? 40 : 10 },
    );
  });

  it('time travel by time: the state as of a date', async () => {
    const inner = await (await kind.fresh()).open();
    const store = new LifecycleEventStore(inner);
    const notes = new Repository(store, Notes);
    const beforeAll = new Date(Date.now() - 60_000);
    await store.append('n', [note(1)], { expectedVersion: 'no-stream' });
    const [first] = await store.readStream('n').toArray();
    await waitPast(first!.recordedAt);
    const middle = new Date();
    await waitPast(middle);
    await store.append('n', [note(10)], { expectedVersion: 1 });
    expect(await versionAt(store, 'n', middle)).toBe(1);
    expect(await versionAt(store, 'n', new Date())).toBe(2);
    expect(await versionAt(store, 'missing', middle)).toBe(0);
    expect((await loadAsOf(notes, store, 'n', middle)).total).toBe(1);
    expect((await loadAsOf(notes, store, 'n', new Date())).total).toBe(11);
    await expect(loadAsOf(notes, store, 'n', beforeAll)).rejects.toBeInstanceOf(AggregateNotFoundError);
  });
});

describe.each([
  [
    'memory',
    async () => {
      const store = new InMemoryEventStore({ pageSize: 3 });
      return { store, pruning: Object.assign(new InMemoryStreamPruning(store), { close: async () => undefined }) };
    },
  ],
  [
    'sqlite',
    async () => {
      const { open, location } = await kindOf('sqlite').fresh();
      return { store: await open(), pruning: new SqliteStreamPruning({ path: location }) as StreamPruning & { close(): Promise<void> } };
    },
  ],
  [
    'postgres',
    async () => {
      const { open, location } = await kindOf('postgres').fresh();
      return { store: await open(), pruning: new PostgresStreamPruning({ pool: pg.pool, schema: location }) as StreamPruning & { close(): Promise<void> } };
    },
  ],
  [
    'nats',
    async () => {
      const { open } = await kindOf('nats').fresh();
      const store = (await open()) as NatsEventStore;
      return { store, pruning: Object.assign(new NatsStreamPruning(store), { close: async () => undefined }) };
    },
  ],
] as const)('stream pruning on %s', (_name, make) => {
  it('purges a deleted stream down to its tombstone; versions and positions stay', async () => {
    const { store: inner, pruning } = await make();
    const store = new LifecycleEventStore(inner);
    await store.append('gone', [note(1), note(2)], { expectedVersion: 'no-stream' });
    await store.append('kept', [note(3)], { expectedVersion: 'no-stream' });
    await expect(pruning.purgeDeletedStream('gone')).rejects.toThrow(/tombstone it/);
    await store.tombstone('gone');
    const before = await inner.readAll().toArray();
    expect(await pruning.purgeDeletedStream('gone')).toEqual({ removedEvents: 2 });
    expect(await pruning.purgeDeletedStream('gone')).toEqual({ removedEvents: 0 });
    // The raw log keeps placeholders at the same versions and positions; the layer hides them.
    const after = await inner.readAll().toArray();
    expect(after.map((e) => [e.streamId, e.type, e.version, e.position, e.eventId])).toEqual(
      before.map((e) => [e.streamId, e.streamId === 'gone' && e.type === 'Noted' ? '$Pruned' : e.type, e.version, e.position, e.eventId]),
    );
    expect(after.filter((e) => e.type === '$Pruned').map((e) => [e.data, e.metadata])).toEqual([
      [null, {}],
      [null, {}],
    ]);
    expect((await store.readAll().toArray()).map((e) => `${e.streamId}:${e.type}`)).toEqual(['kept:Noted', 'gone:$StreamDeleted']);
    expect(await inner.streamVersion('gone')).toBe(3);
    await expect(store.append('gone', [note(1)], { expectedVersion: 'any' })).rejects.toBeInstanceOf(StreamDeletedError);
    // Positions are not reused after the purge.
    const next = await store.append('kept', [note(4)], { expectedVersion: 1 });
    expect(next.position).toBeGreaterThan(Math.max(...before.map((e) => e.position)));
    await pruning.close();
  });

  it('truncates below a version: loads need a snapshot from then on', async () => {
    const { store: inner, pruning } = await make();
    const snapshots = new InMemorySnapshotStore();
    const layered = new LifecycleEventStore(inner);
    const notes = new Repository(layered, Notes, { snapshots: { store: snapshots, snapshotEvery: 3 } });
    const plain = new Repository(layered, Notes);
    const n = new Notes('t');
    for (let i = 1; i <= 4; i++) n['raise']('Noted', { n: i });
    await notes.save(n);
    await expect(pruning.truncateBefore('t', 6)).rejects.toThrow(/would remove all/);
    await expect(pruning.truncateBefore('missing', 1)).rejects.toBeInstanceOf(StreamNotFoundError);
    expect(await pruning.truncateBefore('t', 4)).toEqual({ removedEvents: 3 });
    expect(await inner.streamVersion('t')).toBe(4);
    expect((await inner.readStream('t').toArray()).map((e) => e.type)).toEqual(['$Pruned', '$Pruned', '$Pruned', 'Noted']);
    expect((await new LifecycleEventStore(inner).readStream('t').toArray()).map((e) => e.version)).toEqual([4]);
    // With the snapshot at version 3 the aggregate still loads; a plain fold cannot start at 4.
    expect((await notes.load('t')).total).toBe(10);
    expect(isEventfoldError(await failure<unknown>(() => plain.load('t')), 'EVENT_OUT_OF_ORDER')).toBe(true);
    await pruning.close();
  });
});

function kindOf(name: 'sqlite' | 'postgres' | 'nats') {
  return kinds.find((k) => k.name === name)!;
}

async function waitPast(moment: Date): Promise<void> {
  while (Date.now() <= moment.getTime() + 2) await new Promise((resolve) => setTimeout(resolve, 5));
}
