import { Aggregate } from '../aggregate/aggregate.js';
import type { Snapshottable } from '../aggregate/aggregate.js';
import type { Event } from '../events/types.js';
import { Repository } from '../repository/repository.js';
import type { Snapshot, SnapshotStore } from '../snapshots/snapshot-store.js';
import type { EventStore } from '../store/event-store.js';
import { expect } from './expect.js';
import { loadFastCheck, registrar, type ConformanceSuiteOptions } from './framework.js';

/** A fresh, empty snapshot store (and, for the Repository test, an event store it serves). */
export interface SnapshotStoreFixture {
  readonly snapshots: SnapshotStore;
  /** An empty event store the snapshots sit beside; closed by the suite after the test. */
  readonly events: EventStore;
}

export type SnapshotStoreFactory = () => Promise<SnapshotStoreFixture> | SnapshotStoreFixture;

export interface SnapshotStoreConformanceOptions extends ConformanceSuiteOptions {
  /** fast-check runs of the model property. Default 25. */
  readonly propertyRuns?: number;
}

const snap = (streamId: string, version: number, schemaVersion = 1, state: Snapshot['state'] = { v: version }): Snapshot => ({
  streamId,
  version,
  schemaVersion,
  state,
  takenAt: new Date(1_700_000_000_000 + version),
});

async function errorOf(action: () => unknown): Promise<{ code?: unknown; name?: unknown }> {
  try {
    await action();
  } catch (error) {
    return error as { code?: unknown };
  }
  throw new Error('expected the action to fail');
}

/** The model every snapshot store must behave like: all snapshots kept, newest at or below wins. */
class SnapshotModel {
  private readonly saved = new Map<string, Map<number, Snapshot>>();

  save(s: Snapshot): void {
    let byVersion = this.saved.get(s.streamId);
    if (byVersion === undefined) this.saved.set(s.streamId, (byVersion = new Map()));
    byVersion.set(s.version, JSON.parse(JSON.stringify({ ...s, takenAt: s.takenAt.getTime() })) as Snapshot);
  }

  load(streamId: string, maxVersion = Number.MAX_SAFE_INTEGER, schemaVersion?: number): Snapshot | undefined {
    const candidates = [...(this.saved.get(streamId)?.values() ?? [])]
      .filter((s) => s.version <= maxVersion && (schemaVersion === undefined || s.schemaVersion === schemaVersion))
      .sort((a, b) => b.version - a.version);
    const best = candidates[0];
    return best === undefined ? undefined : { ...best, takenAt: new Date(best.takenAt as unknown as number) };
  }
}

/**
 * The conformance suite of the `SnapshotStore` port, run against every snapshot adapter (the
 * in-memory one included): newest-at-or-below semantics with schema-version filtering (a fast-check
 * property against a model), replace on the same version, frozen results that do not alias the
 * caller's state, validation before any write, the closed store, and serving a `Repository`.
 */
export function describeSnapshotStoreConformance(
  name: string,
  create: SnapshotStoreFactory,
  options: SnapshotStoreConformanceOptions,
): void {
  const register = registrar('describeSnapshotStoreConformance', options);
  register.describe(`${name} — SnapshotStore conformance`, () => {
    const open: SnapshotStoreFixture[] = [];
    const fresh = async (): Promise<SnapshotStoreFixture> => {
      const fixture = await create();
      open.push(fixture);
      return fixture;
    };
    /** Declares a test; the fixtures it opened are closed when it ends, failed or not. */
    const it = (testName: string, body: () => Promise<void>, slow = false): void => {
      (slow ? register.slowTest : register.test)(testName, async () => {
        try {
          await body();
        } finally {
          for (const fixture of open.splice(0)) {
            await fixture.snapshots.close();
            await fixture.events.close();
          }
        }
      });
    };

    it('loads the newest snapshot at or below maxVersion, of the schema version asked for, like the model', async () => {
      const fc = await loadFastCheck();
      const { snapshots } = await fresh();
      let run = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              stream: fc.constantFrom('a', 'b'),
              version: fc.integer({ min: 1, max: 12 }),
              schemaVersion: fc.integer({ min: -1, max: 2 }),
              state: fc.jsonValue({ maxDepth: 2 }),
            }),
            { maxLength: 12 },
          ),
          fc.array(
            fc.record({
              stream: fc.constantFrom('a', 'b', 'c'),
              maxVersion: fc.option(fc.oneof(fc.integer({ min: -1, max: 14 }), fc.double({ min: 0, max: 14, noNaN: true })), {
                nil: undefined,
              }),
              schemaVersion: fc.option(fc.integer({ min: -1, max: 2 }), { nil: undefined }),
            }),
            { minLength: 1, maxLength: 8 },
          ),
          async (saves, loads) => {
            const prefix = `r${++run}-`; // fresh stream ids per run: the model starts empty
            const model = new SnapshotModel();
            for (const s of saves) {
              const snapshot = snap(prefix + s.stream, s.version, s.schemaVersion, s.state as Snapshot['state']);
              await snapshots.save(snapshot);
              model.save(snapshot);
            }
            for (const l of loads) {
              const query = {
                ...(l.maxVersion === undefined ? {} : { maxVersion: l.maxVersion }),
                ...(l.schemaVersion === undefined ? {} : { schemaVersion: l.schemaVersion }),
              };
              expect(await snapshots.load(prefix + l.stream, query), JSON.stringify(query)).toEqual(
                model.load(prefix + l.stream, l.maxVersion, l.schemaVersion),
              );
            }
          },
        ),
        { numRuns: options.propertyRuns ?? 25 },
      );
    }, true);

    it('replaces a snapshot saved again at the same version', async () => {
      const { snapshots } = await fresh();
      await snapshots.save(snap('a', 3, 1, { first: true }));
      await snapshots.save(snap('a', 3, 2, { second: true }));
      expect(await snapshots.load('a')).toEqual(snap('a', 3, 2, { second: true }));
      expect(await snapshots.load('a', { schemaVersion: 1 })).toBeUndefined();
    });

    it('returns frozen snapshots with their exact state and time, not aliasing the caller state', async () => {
      const { snapshots } = await fresh();
      const state = { items: [1], nested: { z: 1, a: 'é' } };
      await snapshots.save(snap('a', 1, 1, state));
      state.items.push(2);
      const loaded = await snapshots.load('a');
      expect(loaded).toEqual(snap('a', 1, 1, { items: [1], nested: { z: 1, a: 'é' } }));
      expect(Object.isFrozen(loaded)).toBe(true);
      expect(Object.isFrozen((loaded?.state as { items: number[] }).items)).toBe(true);
      expect(await snapshots.load('missing')).toBeUndefined();
    });

    it('rejects invalid snapshots and queries before writing anything', async () => {
      const { snapshots } = await fresh();
      await snapshots.save(snap('a', 1));
      const cyclic: Record<string, unknown> = {};
      cyclic['self'] = cyclic;
      const bad: Array<[Snapshot, string]> = [
        [snap('', 1), 'INVALID_STREAM_ID'],
        [snap('a', 0), 'INVALID_ARGUMENT'],
        [snap('a', 2.5), 'INVALID_ARGUMENT'],
        [snap('a', 2, 1.5), 'INVALID_ARGUMENT'],
        [{ ...snap('a', 2), takenAt: 'yesterday' as never }, 'INVALID_ARGUMENT'],
        [{ ...snap('a', 2), takenAt: new Date(Number.NaN) }, 'INVALID_ARGUMENT'],
        [snap('a', 2, 1, cyclic as never), 'INVALID_ARGUMENT'],
        [{ ...snap('a', 2), state: undefined as never }, 'INVALID_ARGUMENT'],
        [snap('a', 2, 1, { n: 10n } as never), 'INVALID_ARGUMENT'],
        [null as never, 'INVALID_ARGUMENT'],
      ];
      for (const [snapshot, code] of bad) {
        expect(await errorOf(() => snapshots.save(snapshot)), `${code}: ${String(snapshot?.streamId)}`).toMatchObject({ code });
      }
      expect(await snapshots.load('a')).toEqual(snap('a', 1));
      expect(await errorOf(() => snapshots.load(' a'))).toMatchObject({ code: 'INVALID_STREAM_ID' });
      expect(await errorOf(() => snapshots.load('a', { maxVersion: 'x' as never }))).toMatchObject({ code: 'INVALID_ARGUMENT' });
      expect(await errorOf(() => snapshots.load('a', { schemaVersion: 0.5 }))).toMatchObject({ code: 'INVALID_ARGUMENT' });
    });

    it('rejects every call after close with STORE_CLOSED', async () => {
      const { snapshots } = await fresh();
      await snapshots.save(snap('a', 1));
      await snapshots.close();
      expect(await errorOf(() => snapshots.load('a'))).toMatchObject({ code: 'STORE_CLOSED' });
      expect(await errorOf(() => snapshots.save(snap('a', 2)))).toMatchObject({ code: 'STORE_CLOSED' });
      await snapshots.close(); // closing twice is fine
    });

    it('serves a Repository: snapshots are taken, and loads (also time travel) start from them', async () => {
      type Counted = Event<'Counted', { by: number }>;
      class Counter extends Aggregate<Counted> implements Snapshottable<{ total: number }> {
        total = 0;
        applied = 0;
        count(by: number): void {
          this.raise('Counted', { by });
        }
        protected override apply(event: Counted): void {
          this.total += event.data.by;
          this.applied++;
        }
        toSnapshot(): { total: number } {
          return { total: this.total };
        }
        restoreSnapshot(state: { total: number }): void {
          this.total = state.total;
        }
      }
      const { snapshots, events } = await fresh();
      const repository = new Repository(events, Counter, { snapshots: { store: snapshots, snapshotEvery: 5 } });
      const counter = new Counter('c1');
      for (let i = 1; i <= 12; i++) counter.count(i);
      await repository.save(counter);
      expect((await snapshots.load('c1'))?.version).toBe(12);
      const loaded = await repository.load('c1');
      expect([loaded.total, loaded.version, loaded.applied]).toEqual([78, 12, 0]); // no event folded
      loaded.count(1);
      await repository.save(loaded);
      const again = await repository.load('c1');
      expect([again.total, again.applied]).toEqual([79, 1]);
      const past = await repository.load('c1', { version: 4 });
      expect([past.total, past.applied]).toEqual([10, 4]);
    });
  });
}
