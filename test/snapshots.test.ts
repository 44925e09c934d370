import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Aggregate,
  assertNever,
  InMemoryEventStore,
  InMemorySnapshotStore,
  InvalidArgumentError,
  Repository,
  StoreClosedError,
  type AnyEvent,
  type Event,
  type EventStream,
  type ReadStreamOptions,
  type RecordedEvent,
  type Snapshot,
  type Snapshottable,
} from '../src/index.js';

type Added = Event<'Added', { n: number }>;
type Renamed = Event<'Renamed', { name: string }>;
type CounterEvent = Added | Renamed;
interface CounterState {
  total: number;
  name: string;
  count: number;
}

/** A counter that also counts how many events it applied since it was constructed. */
class Counter extends Aggregate<CounterEvent> implements Snapshottable<CounterState> {
  total = 0;
  name = '';
  count = 0;
  applied = 0;

  add(n: number): void {
    this.raise('Added', { n });
  }

  rename(name: string): void {
    this.raise('Renamed', { name });
  }

  protected apply(event: CounterEvent): void {
    this.applied++;
    switch (event.type) {
      case 'Added':
        this.total += event.data.n;
        this.count++;
        break;
      case 'Renamed':
        this.name = event.data.name;
        break;
      default:
        assertNever(event);
    }
  }

  toSnapshot(): CounterState {
    return { total: this.total, name: this.name, count: this.count };
  }

  restoreSnapshot(state: CounterState): void {
    this.total = state.total;
    this.name = state.name;
    this.count = state.count;
  }
}

class NotSnapshottable extends Aggregate<CounterEvent> {
  protected apply(): void {}
}

/** The real in-memory store, counting the events its stream reads hand out. */
class CountingStore extends InMemoryEventStore {
  eventsRead = 0;

  override readStream(streamId: string, options?: ReadStreamOptions): EventStream<RecordedEvent> {
    const inner = super.readStream(streamId, options);
    const self = this;
    const pages = async function* () {
      for await (const page of inner.pages()) {
        self.eventsRead += page.length;
        yield page;
      }
    };
    return {
      pages,
      async *[Symbol.asyncIterator]() {
        for await (const page of pages()) yield* page;
      },
      async toArray() {
        const all: RecordedEvent[] = [];
        for await (const page of pages()) all.push(...page);
        return all;
      },
    };
  }
}

const stateOf = (c: Counter) => ({ total: c.total, name: c.name, count: c.count, version: c.version });

function setup(snapshotEvery: number, schemaVersion = 1, snapshotStore = new InMemorySnapshotStore()) {
  const store = new CountingStore();
  const errors: Array<{ error: unknown; id: string }> = [];
  const repo = new Repository(store, Counter, {
    streamPrefix: 'counter',
    snapshots: { store: snapshotStore, snapshotEvery, schemaVersion },
    onSnapshotError: (error, id) => errors.push({ error, id }),
  });
  return { store, snapshotStore, repo, errors };
}

async function saveAdds(repo: Repository<Counter>, id: string, values: number[], batch = values.length): Promise<void> {
  for (let i = 0; i < values.length; i += batch) {
    const c = (await repo.find(id)) ?? new Counter(id);
    for (const v of values.slice(i, i + batch)) c.add(v);
    await repo.save(c);
  }
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
const sum = (xs: number[]) => xs.reduce((s, x) => s + x, 0);

async function fullFold(store: InMemoryEventStore, streamId: string, toVersion?: number): Promise<Counter> {
  const events = await store.readStream(streamId, toVersion === undefined ? {} : { toVersion }).toArray();
  return Counter.fromEvents(streamId, events as RecordedEvent<CounterEvent>[]);
}

describe('Repository snapshots', () => {
  it('rejects a bad snapshotEvery and an aggregate that cannot be snapshotted', () => {
    const store = new InMemoryEventStore();
    const snapshots = new InMemorySnapshotStore();
    for (const every of [0, -5, 1.5, Number.NaN]) {
      expect(() => new Repository(store, Counter, { snapshots: { store: snapshots, snapshotEvery: every } })).toThrow(
        InvalidArgumentError,
      );
    }
    expect(() => new Repository(store, NotSnapshottable, { snapshots: { store: snapshots, snapshotEvery: 10 } })).toThrow(
      /toSnapshot/,
    );
  });

  it('takes a snapshot when a save crosses a multiple of snapshotEvery', async () => {
    const { repo, snapshotStore } = setup(10);
    await saveAdds(repo, 'c', range(9));
    expect(await snapshotStore.load('counter-c')).toBeUndefined();
    await saveAdds(repo, 'c', [10, 11, 12]);
    const snap = await snapshotStore.load('counter-c');
    expect(snap).toMatchObject({ streamId: 'counter-c', version: 12, schemaVersion: 1 });
    expect(snap!.state).toEqual({ total: sum(range(12)), name: '', count: 12 });
    await saveAdds(repo, 'c', [13]);
    expect((await snapshotStore.load('counter-c'))!.version).toBe(12);
  });

  it('loads from the newest snapshot plus only the events after it', async () => {
    const { repo, store, snapshotStore } = setup(100);
    await saveAdds(repo, 'c', range(250), 50); // snapshots at 100, 200
    expect((await snapshotStore.load('counter-c'))!.version).toBe(200);
    store.eventsRead = 0;
    const loaded = await repo.load('c');
    expect(loaded.applied).toBe(50);
    expect(store.eventsRead).toBe(50);
    expect(stateOf(loaded)).toEqual(stateOf(await fullFold(store, 'counter-c')));
    expect(loaded.total).toBe(sum(range(250)));
    expect(loaded.version).toBe(250);
    expect(loaded.persistedVersion).toBe(250);
  });

  it('proves the snapshot is used: a tampered snapshot shows up in the loaded state', async () => {
    const { repo, snapshotStore } = setup(5);
    await saveAdds(repo, 'c', range(7));
    const real = (await snapshotStore.load('counter-c'))!;
    await snapshotStore.save({ ...real, state: { total: -1000, name: 'from-snapshot', count: 0 } });
    const loaded = await repo.load('c');
    expect(loaded.name).toBe('from-snapshot');
    expect(loaded.total).toBe(-1000);
  });

  it('time travel starts from the newest snapshot at or below the wanted version', async () => {
    const { repo, store } = setup(100);
    await saveAdds(repo, 'c', range(300), 100); // snapshots at 100, 200, 300
    for (const [version, tail] of [
      [150, 50],
      [200, 0],
      [99, 99],
      [300, 0],
      [1, 1],
    ] as const) {
      store.eventsRead = 0;
      const past = await repo.load('c', { version });
      expect(past.version).toBe(version);
      expect(past.applied).toBe(tail);
      expect(store.eventsRead).toBe(tail);
      expect(past.total).toBe(sum(range(version)));
    }
  });

  it('snapshots the loaded state when the tail read is at least snapshotEvery long', async () => {
    const { repo, store, snapshotStore } = setup(10);
    // Written straight to the store, so no snapshot was taken on save.
    await store.append('counter-c', range(25).map((n): AnyEvent => ({ type: 'Added', data: { n } })), {
      expectedVersion: 'no-stream',
    });
    expect(await snapshotStore.load('counter-c')).toBeUndefined();
    expect((await repo.load('c')).applied).toBe(25);
    expect((await snapshotStore.load('counter-c'))!.version).toBe(25);
    expect((await repo.load('c')).applied).toBe(0);
    // Time travel never writes a snapshot.
    await repo.load('c', { version: 12 });
    expect((await snapshotStore.load('counter-c', { maxVersion: 24 }))).toBeUndefined();
  });

  it('a changed schemaVersion ignores stale snapshots and folds from the events', async () => {
    const shared = new InMemorySnapshotStore();
    const v1 = setup(10, 1, shared);
    await saveAdds(v1.repo, 'c', range(30), 10);
    expect((await shared.load('counter-c', { schemaVersion: 1 }))!.version).toBe(30);

    const v2 = new Repository(v1.store, Counter, {
      streamPrefix: 'counter',
      snapshots: { store: shared, snapshotEvery: 10, schemaVersion: 2 },
    });
    // Even a tampered v1 snapshot cannot leak into v2.
    await shared.save({ streamId: 'counter-c', version: 30, schemaVersion: 1, state: { total: 0, name: 'stale', count: 0 }, takenAt: new Date() });
    const loaded = await v2.load('c');
    expect(loaded.applied).toBe(30);
    expect(loaded.name).toBe('');
    expect(loaded.total).toBe(sum(range(30)));
    // v2 wrote its own snapshot, and uses it next time.
    const own = await shared.load('counter-c', { schemaVersion: 2 });
    expect(own).toMatchObject({ version: 30, schemaVersion: 2 });
    expect((await v2.load('c')).applied).toBe(0);
  });

  it('a failing snapshot save does not fail the save; it goes to onSnapshotError', async () => {
    const snapshotStore = new InMemorySnapshotStore();
    const { repo, store, errors } = setup(3, 1, snapshotStore);
    await snapshotStore.close();
    const c = new Counter('c');
    for (const n of range(5)) c.add(n);
    const result = await repo.save(c);
    expect(result.version).toBe(5);
    expect(c.persistedVersion).toBe(5);
    expect(await store.streamVersion('counter-c')).toBe(5);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.id).toBe('c');
    expect(errors[0]!.error).toBeInstanceOf(StoreClosedError);
  });

  it('a state that is not JSON is reported, and loading still works from events', async () => {
    class BadSnapshot extends Counter {
      override toSnapshot(): CounterState {
        return { total: 10n as unknown as number, name: '', count: 0 };
      }
    }
    const store = new InMemoryEventStore();
    const snapshots = new InMemorySnapshotStore();
    const errors: unknown[] = [];
    const repo = new Repository(store, BadSnapshot, {
      snapshots: { store: snapshots, snapshotEvery: 2 },
      onSnapshotError: (e) => errors.push(e),
    });
    const b = new BadSnapshot('b');
    b.add(1);
    b.add(2);
    await repo.save(b);
    expect(errors).toHaveLength(1);
    expect(await snapshots.load('b')).toBeUndefined();
    expect((await repo.load('b')).total).toBe(3);
  });

  it('stored snapshots do not alias the aggregate’s state', async () => {
    class Listy extends Counter {
      items: number[] = [];
      protected override apply(event: CounterEvent): void {
        super.apply(event);
        if (event.type === 'Added') this.items.push(event.data.n);
      }
      override toSnapshot(): CounterState {
        return { ...super.toSnapshot(), items: this.items } as CounterState;
      }
    }
    const store = new InMemoryEventStore();
    const snapshots = new InMemorySnapshotStore();
    const repo = new Repository(store, Listy, { snapshots: { store: snapshots, snapshotEvery: 2 } });
    const l = new Listy('l');
    l.add(1);
    l.add(2);
    await repo.save(l);
    l.items.push(99);
    const snap = (await snapshots.load('l')) as Snapshot;
    expect((snap.state as { items: number[] }).items).toEqual([1, 2]);
    expect(Object.isFrozen(snap.state)).toBe(true);
  });
});

describe('Snapshot properties', () => {
  it('snapshot + tail load equals the full fold, for random histories, batches, snapshotEvery and versions', async () => {
    const eventArb = fc.oneof(
      fc.integer({ min: -50, max: 50 }).map((n) => ({ kind: 'add' as const, n })),
      fc.string({ maxLength: 5 }).map((name) => ({ kind: 'rename' as const, name })),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(eventArb, { minLength: 1, maxLength: 120 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 30 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 5 }),
        async (history, snapshotEvery, batch, picks) => {
          const { repo, store, snapshotStore, errors } = setup(snapshotEvery);
          for (let i = 0; i < history.length; i += batch) {
            const c = (await repo.find('p')) ?? new Counter('p');
            for (const e of history.slice(i, i + batch)) {
              if (e.kind === 'add') c.add(e.n);
              else c.rename(e.name);
            }
            await repo.save(c);
          }
          expect(errors).toEqual([]);
          const latest = await repo.load('p');
          expect(stateOf(latest)).toEqual(stateOf(await fullFold(store, 'counter-p')));
          for (const pick of picks) {
            const version = 1 + (pick % history.length);
            const snap = await snapshotStore.load('counter-p', { maxVersion: version, schemaVersion: 1 });
            store.eventsRead = 0;
            const past = await repo.load('p', { version });
            const read = store.eventsRead;
            expect(stateOf(past)).toEqual(stateOf(await fullFold(store, 'counter-p', version)));
            // Only the events after the snapshot were read and applied.
            const tail = version - (snap?.version ?? 0);
            expect(past.applied).toBe(tail);
            expect(read).toBe(tail);
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
