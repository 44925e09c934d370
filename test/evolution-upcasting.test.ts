import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  defineProjection,
  InMemoryCheckpointStore,
  InMemoryProjectionRunner,
  Subscription,
  InMemoryReadModel,
  InMemorySnapshotStore,
  isEventfoldError,
  loadAsOf,
  Repository,
  schemaVersionOf,
  SCHEMA_VERSION_KEY,
  Upcasters,
  UpcastingEventStore,
  type EventStore,
  type InMemoryProjectionContext,
  type RecordedEvent,
} from '../src/index.js';
import { assertUpcasts, recordedFixture, UpcastAssertionError, type UpcastCase } from '../src/testing/index.js';
import { evolutionStoreKinds } from './fixtures/evolution-stores.js';
import { EvolvedUser, upcastersV2, upcastersV3, type UserEvents, type UserEventsV1 } from './fixtures/evolution-user.js';

const kinds = evolutionStoreKinds();

describe('Upcasters', () => {
  it('asserts the user upcasters on stored fixtures', () => {
    const cases = JSON.parse(readFileSync(new URL('./fixtures/upcasting/user-v1.json', import.meta.url), 'utf8')) as UpcastCase[];
    expect(cases.length).toBe(4);
    assertUpcasts(upcastersV3(), cases);
    // The helper fails when the upcasters are not the ones the fixtures describe.
    expect(() => assertUpcasts(upcastersV2(), cases)).toThrow(UpcastAssertionError);
  });

  it('stamps the current version (overriding a caller\'s), and leaves current events alone', () => {
    const up = upcastersV3();
    expect(up.currentVersion('UserRegistered')).toBe(3);
    expect(up.currentVersion('UserRenamed')).toBe(2);
    expect(up.currentVersion('UserActivated')).toBe(2);
    expect(up.currentVersion('Unknown')).toBe(1);
    expect(up.stamp({ type: 'UserRegistered', data: {} }).metadata).toEqual({ [SCHEMA_VERSION_KEY]: 3 });
    expect(up.stamp({ type: 'UserRegistered', data: {}, metadata: { [SCHEMA_VERSION_KEY]: 1, a: 1 } }).metadata).toEqual({ [SCHEMA_VERSION_KEY]: 3, a: 1 });
    const current = recordedFixture({ type: 'UserRegistered', data: { firstName: 'a', lastName: 'b', country: 'x' }, schemaVersion: 3 });
    expect(up.upcastEvent(current)[0]).toBe(current);
  });

  it('refuses bad registrations and reports a throwing upcaster with UpcastError', () => {
    expect(() => new Upcasters().upcast('A', 0, (d) => d)).toThrow(/fromVersion/);
    expect(() => new Upcasters().upcast('A', 1, (d) => d).upcast('A', 1, (d) => d)).toThrow(/already registered/);
    expect(() => new Upcasters().split('A', 1, [], () => [])).toThrow(/name the event types/);
    const failing = new Upcasters().upcast('A', 1, () => {
      throw new Error('boom');
    });
    const error = (() => {
      try {
        failing.upcastEvent(recordedFixture({ type: 'A', data: 1 }));
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(isEventfoldError(error, 'UPCAST_FAILED')).toBe(true);
    expect((error as Error).message).toMatch(/boom/);
    const badSplit = new Upcasters().split('A', 1, ['B'], () => [{ type: 'C', data: 1 }]);
    expect(() => badSplit.upcastEvent(recordedFixture({ type: 'A', data: 1 }))).toThrow(/not one of/);
  });

  it('property: a chain of steps equals their composition, from any stored version', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ mul: fc.integer({ min: -3, max: 3 }), add: fc.integer({ min: -100, max: 100 }) }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: -1000, max: 1000 }),
        fc.nat(),
        (steps, start, pick) => {
          const up = new Upcasters();
          steps.forEach((s, i) => up.upcast<{ n: number }, { n: number }>('N', i + 1, (d) => ({ n: d.n * s.mul + s.add })));
          const from = (pick % (steps.length + 1)) + 1;
          let expected = start;
          for (const s of steps.slice(from - 1)) expected = expected * s.mul + s.add;
          const out = up.upcastEvent(recordedFixture({ type: 'N', data: { n: start }, schemaVersion: from }));
          expect(out).toHaveLength(1);
          expect(out[0]!.data).toEqual({ n: expected });
          expect(schemaVersionOf(out[0]!)).toBe(steps.length + 1);
          expect(up.currentVersion('N')).toBe(steps.length + 1);
          // Idempotent: an upcast event is current.
          expect(up.upcastEvent(out[0]!)[0]).toBe(out[0]);
        },
      ),
    );
  });

  it('property: splits keep order, stable derived ids, and the stored version and position', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5 }), fc.integer({ min: 0, max: 5 }), (first, second) => {
        const up = new Upcasters()
          .split<number>('A', 1, ['B'], (n) => Array.from({ length: first }, (_, i) => ({ type: 'B', data: n * 10 + i })))
          .split<number>('B', 2, ['C'], (n) => Array.from({ length: second }, (_, i) => ({ type: 'C', data: n * 10 + i })));
        const stored = { ...recordedFixture({ type: 'A', data: 1 }), version: 7, position: 42 } as RecordedEvent;
        const out = up.upcastEvent(stored);
        const expected: number[] = [];
        for (let i = 0; i < first; i++) for (let j = 0; j < second; j++) expected.push((10 + i) * 10 + j);
        expect(out.map((e) => e.data)).toEqual(expected);
        expect(out.every((e) => e.version === 7 && e.position === 42 && e.type === 'C')).toBe(true);
        expect(new Set(out.map((e) => e.eventId)).size).toBe(out.length);
        expect(up.upcastEvent(stored).map((e) => e.eventId)).toEqual(out.map((e) => e.eventId));
        if (out.length > 0) expect(out[0]!.eventId).toBe(stored.eventId);
      }),
    );
  });

  it('gives typed current shapes to aggregates', () => {
    type Registered = Extract<UserEvents, { type: 'UserRegistered' }>['data'];
    expectTypeOf<Registered>().toEqualTypeOf<{ firstName: string; lastName: string; country: string }>();
  });
});

describe.each(kinds)('upcasting on the $name store', (kind) => {
  async function storeHistory(): Promise<{ inner: EventStore; before: Date }> {
    const { open } = await kind.fresh();
    const inner = await open();
    // Build 1 had no upcasters: its events carry schema version 1.
    const build1 = new UpcastingEventStore(inner, new Upcasters());
    const v1 = (e: UserEventsV1) => e;
    await build1.append('user-ada', [v1({ type: 'UserRegistered', data: { name: 'Ada Lovelace' } })], { expectedVersion: 'no-stream' });
    await build1.append('user-ada', [v1({ type: 'UserNameChanged', data: { name: 'Ada King' } })], { expectedVersion: 1 });
    await build1.append('user-grace', [v1({ type: 'UserSignedUpAndActivated', data: { name: 'Grace Hopper', at: '1950' } })], {
      expectedVersion: 'no-stream',
    });
    const before = new Date();
    await waitPast(before);
    // Build 2 wrote UserRegistered in its v2 shape.
    const build2 = new UpcastingEventStore(inner, upcastersV2());
    await build2.append('user-alan', [{ type: 'UserRegistered', data: { firstName: 'Alan', lastName: 'Turing' } }], { expectedVersion: 'no-stream' });
    await build2.append('user-ada', [{ type: 'UserNameChanged', data: { name: 'Ada Byron' } }], { expectedVersion: 2 });
    return { inner, before };
  }

  it('stores v1 and v2 events and reads them as v3 on every read path', async () => {
    const { inner, before } = await storeHistory();
    const stored = await inner.readAll().toArray();
    expect(stored.map(schemaVersionOf)).toEqual([1, 1, 1, 2, 1]);
    const store = new UpcastingEventStore(inner, upcastersV3());

    // readStream
    const ada = await store.readStream('user-ada').toArray();
    expect(ada.map((e) => [e.type, e.data, e.version])).toEqual([
      ['UserRegistered', { firstName: 'Ada', lastName: 'Lovelace', country: 'unknown' }, 1],
      ['UserRenamed', { firstName: 'Ada', lastName: 'King' }, 2],
      ['UserRenamed', { firstName: 'Ada', lastName: 'Byron' }, 3],
    ]);
    // readAll: the split event becomes two, with the stored position
    const all = await store.readAll().toArray();
    expect(all.map((e) => `${e.streamId}:${e.type}@${e.position}`)).toEqual([
      'user-ada:UserRegistered@' + stored[0]!.position,
      'user-ada:UserRenamed@' + stored[1]!.position,
      'user-grace:UserRegistered@' + stored[2]!.position,
      'user-grace:UserActivated@' + stored[2]!.position,
      'user-alan:UserRegistered@' + stored[3]!.position,
      'user-ada:UserRenamed@' + stored[4]!.position,
    ]);
    expect(all.every((e) => Object.isFrozen(e) && Object.isFrozen(e.data))).toBe(true);

    // readAll filtered by current types reaches the stored predecessors (renamed, split)
    const renamed = await store.readAll({ filter: { types: ['UserRenamed'] } }).toArray();
    expect(renamed.map((e) => e.data)).toEqual([
      { firstName: 'Ada', lastName: 'King' },
      { firstName: 'Ada', lastName: 'Byron' },
    ]);
    const activated = await store.readAll({ filter: { types: ['UserActivated'], categories: ['user'] } }).toArray();
    expect(activated.map((e) => [e.streamId, e.type])).toEqual([['user-grace', 'UserActivated']]);
    const registered = await store.readAll({ filter: { types: ['UserRegistered'] } }).toArray();
    expect(registered.map((e) => e.streamId)).toEqual(['user-ada', 'user-grace', 'user-alan']);

    // Repository loads (also of the split stream) and time travel by version and by time
    const users = new Repository(store, EvolvedUser);
    const loaded = await users.load('user-ada');
    expect([loaded.fullName, loaded.country, loaded.version]).toEqual(['Ada Byron', 'unknown', 3]);
    expect((await users.load('user-ada', { version: 2 })).fullName).toBe('Ada King');
    expect((await loadAsOf(users, store, 'user-ada', before)).fullName).toBe('Ada King');
    const grace = await users.load('user-grace');
    expect([grace.fullName, grace.activated, grace.version, grace.seen]).toEqual(['Grace Hopper', true, 1, ['UserRegistered', 'UserActivated']]);
    // The loaded aggregate saves at the stored version.
    grace.seen = [];
    await store.append('user-grace', [{ type: 'UserRenamed', data: { firstName: 'Grace', lastName: 'Murray' } }], { expectedVersion: grace.version });

    // A projection runner reading through the layer sees only current shapes.
    const readModel = new InMemoryReadModel();
    const names = defineProjection<UserEvents, InMemoryProjectionContext>({
      name: 'names',
      unknownEvents: 'fail',
      handlers: {
        UserRegistered: (e, ctx) => ctx.readModel.table<string>('names').set(e.streamId, `${e.data.firstName} ${e.data.lastName} (${e.data.country})`),
        UserRenamed: (e, ctx) => ctx.readModel.table<string>('names').set(e.streamId, `${e.data.firstName} ${e.data.lastName}`),
        UserActivated: (e, ctx) => ctx.readModel.table<boolean>('active').set(e.streamId, true),
      },
    });
    const runner = new InMemoryProjectionRunner(store, names, { readModel });
    await runner.start();
    await runner.waitUntilCaughtUp({ timeoutMs: 30_000 });
    await runner.stop();
    expect(Object.fromEntries(readModel.table<string>('names').entries())).toEqual({
      'user-ada': 'Ada Byron',
      'user-grace': 'Grace Murray',
      'user-alan': 'Alan Turing (unknown)',
    });
    expect(readModel.table<boolean>('active').get('user-grace')).toBe(true);

    // A subscription (filtered by a current type) gets the renamed events in their current shape.
    const seen: unknown[] = [];
    const subscription = new Subscription({
      name: 'renames',
      store,
      checkpoints: new InMemoryCheckpointStore(),
      filter: { types: ['UserRenamed'] },
      handle: (events) => {
        for (const e of events) seen.push([e.streamId, e.type, e.data]);
      },
    });
    await subscription.start();
    await subscription.waitUntilCaughtUp({ timeoutMs: 30_000 });
    await subscription.stop();
    expect(seen).toEqual([
      ['user-ada', 'UserRenamed', { firstName: 'Ada', lastName: 'King' }],
      ['user-ada', 'UserRenamed', { firstName: 'Ada', lastName: 'Byron' }],
      ['user-grace', 'UserRenamed', { firstName: 'Grace', lastName: 'Murray' }],
    ]);

    // New events are written at the current version and read back unchanged.
    const appended = await store.append('user-new', [{ type: 'UserRegistered', data: { firstName: 'N', lastName: 'E', country: 'fr' } }], {
      expectedVersion: 'no-stream',
    });
    expect(schemaVersionOf(appended.events[0]!)).toBe(3);
    const raw = await inner.readStream('user-new').toArray();
    expect(raw[0]!.metadata[SCHEMA_VERSION_KEY]).toBe(3);
    expect((await store.readStream('user-new').toArray())[0]!.data).toEqual({ firstName: 'N', lastName: 'E', country: 'fr' });
  });

  it('ignores snapshots of an older state schema and folds upcast events instead', async () => {
    const { inner } = await storeHistory();
    const store = new UpcastingEventStore(inner, upcastersV3());
    const snapshots = new InMemorySnapshotStore();
    // A snapshot written by an older build, in its state schema 1 (a shape the aggregate no longer reads).
    await snapshots.save({ streamId: 'user-ada', version: 2, schemaVersion: 1, state: { name: 'stale' }, takenAt: new Date() });
    class SnapshottedUser extends EvolvedUser {
      toSnapshot() {
        return { fullName: this.fullName, country: this.country, activated: this.activated };
      }
      restoreSnapshot(state: { fullName: string; country: string; activated: boolean }) {
        Object.assign(this, state);
      }
    }
    const users = new Repository(store, SnapshottedUser, { snapshots: { store: snapshots, snapshotEvery: 1, schemaVersion: 2 } });
    const ada = await users.load('user-ada');
    expect(ada.fullName).toBe('Ada Byron');
    expect(ada.seen).toHaveLength(3);
  });
});

async function waitPast(moment: Date): Promise<void> {
  while (Date.now() <= moment.getTime() + 2) await new Promise((resolve) => setTimeout(resolve, 5));
}
