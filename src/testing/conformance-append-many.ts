import type { ExpectedVersion } from '../store/expected-version.js';
import { capabilityLabel, type EventStoreSuite } from './conformance-context.js';
import { describeRefusedMultiStreamCases } from './conformance-append-many-refused.js';
import {
  contentOf,
  expectConflict,
  expectFailure,
  expectStrictlyIncreasing,
  expectUnchanged,
  numbered,
  observe,
  summary,
  versionsOf,
} from './conformance-support.js';
import { expect } from './expect.js';

/** Where `atomicMultiStreamAppend` holds: one atomic step across streams, each with its own check. */
function describeAtomicCases(suite: EventStoreSuite): void {
  suite.test('appends to several streams atomically, in entry order', async () => {
    const store = await suite.open();
    await store.append('account-1', numbered(2, 'old'), { expectedVersion: 'no-stream' });
    const results = await store.appendMany([
      { streamId: 'account-1', events: numbered(1, 'debit'), expectedVersion: 2 },
      { streamId: 'account-2', events: numbered(2, 'credit'), expectedVersion: 'no-stream' },
      { streamId: 'audit', events: numbered(1, 'audit'), expectedVersion: 'any' },
    ]);
    expect(results.map((r) => [r.streamId, r.version])).toEqual([
      ['account-1', 3],
      ['account-2', 2],
      ['audit', 1],
    ]);
    expect(versionsOf(results[1]!.events)).toEqual([1, 2]);
    for (const r of results) expect(r.position).toBe(r.events[r.events.length - 1]!.position);
    const all = results.flatMap((r) => r.events);
    expectStrictlyIncreasing(all.map((e) => e.position));
    const log = await store.readAll().toArray();
    expect(log.slice(2).map(summary)).toEqual(all.map(summary));
    expect(contentOf(await store.readStream('account-2').toArray())).toEqual(numbered(2, 'credit'));
    expect(await store.headPosition()).toBe(results[2]!.position);
  });

  for (const bad of [0, 1, 2]) {
    suite.test(`writes nothing to any stream when entry #${bad} has the wrong expected version`, async () => {
      const store = await suite.open();
      await store.append('x', numbered(1, 'x'), { expectedVersion: 'no-stream' });
      await store.append('y', numbered(2, 'y'), { expectedVersion: 'no-stream' });
      const before = await observe(store, ['x', 'y', 'z']);
      const entries = [
        { streamId: 'x', events: numbered(1, 'x2'), expectedVersion: 1 as ExpectedVersion },
        { streamId: 'y', events: numbered(1, 'y2'), expectedVersion: 'stream-exists' as ExpectedVersion },
        { streamId: 'z', events: numbered(2, 'z1'), expectedVersion: 'no-stream' as ExpectedVersion },
      ];
      const wrong: ExpectedVersion[] = [5, 'no-stream', 'stream-exists'];
      const actual = [1, 2, 0];
      entries[bad] = { ...entries[bad]!, expectedVersion: wrong[bad]! };
      const error = await expectConflict(() => store.appendMany(entries));
      expect(error.streamId).toBe(entries[bad]!.streamId);
      expect(error.expectedVersion).toBe(wrong[bad]);
      expect(error.actualVersion).toBe(actual[bad]);
      await expectUnchanged(store, before);
    });
  }

  suite.test('entries with no events are pure version checks', async () => {
    const store = await suite.open();
    await store.append('guard', numbered(3, 'g'), { expectedVersion: 'no-stream' });
    const ok = await store.appendMany([
      { streamId: 'guard', events: [], expectedVersion: 3 },
      { streamId: 'target', events: numbered(1, 't'), expectedVersion: 'no-stream' },
    ]);
    expect(ok[0]).toMatchObject({ streamId: 'guard', version: 3, position: 0 });
    expect(ok[0]!.events).toEqual([]);
    expect(ok[1]!.version).toBe(1);
    expect(await store.streamVersion('guard')).toBe(3);

    const before = await observe(store, ['guard', 'target', 'absent']);
    const error = await expectConflict(() =>
        store.appendMany([
          { streamId: 'target', events: numbered(1, 't2'), expectedVersion: 1 },
          { streamId: 'guard', events: [], expectedVersion: 2 },
        ]));
    expect(error).toMatchObject({ streamId: 'guard', expectedVersion: 2, actualVersion: 3 });
    const absent = await expectConflict(() =>
        store.appendMany([
          { streamId: 'absent', events: [], expectedVersion: 'stream-exists' },
          { streamId: 'target', events: numbered(1, 't3'), expectedVersion: 'any' },
        ]));
    expect(absent).toMatchObject({ streamId: 'absent', expectedVersion: 'stream-exists', actualVersion: 0 });
    await expectUnchanged(store, before);
  });

  suite.test('all-empty entries over several streams write nothing', async () => {
    const store = await suite.open();
    expect(await store.appendMany([])).toEqual([]);
    const results = await store.appendMany([
      { streamId: 'p', events: [], expectedVersion: 'no-stream' },
      { streamId: 'q', events: [], expectedVersion: 'any' },
    ]);
    expect(results.map((r) => [r.streamId, r.version, r.position, r.events.length])).toEqual([
      ['p', 0, 0, 0],
      ['q', 0, 0, 0],
    ]);
    expect(await store.headPosition()).toBe(0);
    expect(await store.streamVersion('p')).toBe(0);
  });

  suite.test('rejects a stream named twice among several and writes nothing', async () => {
    const store = await suite.open();
    const before = await observe(store, ['dup', 'other']);
    await expectFailure(
      () =>
        store.appendMany([
          { streamId: 'dup', events: numbered(1), expectedVersion: 'any' },
          { streamId: 'other', events: numbered(1), expectedVersion: 'any' },
          { streamId: 'dup', events: numbered(1), expectedVersion: 'any' },
        ]),
      'InvalidArgumentError',
    );
    await expectUnchanged(store, before);
  });

}

/** Both branches: what every appendMany must do whatever the store can promise. */
function describeSharedCases(suite: EventStoreSuite): void {
  suite.test('an empty list writes nothing and returns no results', async () => {
    const store = await suite.open();
    expect(await store.appendMany([])).toEqual([]);
    expect(await store.headPosition()).toBe(0);
  });

  suite.test('rejects the same stream named twice and writes nothing', async () => {
    const store = await suite.open();
    await store.append('dup', numbered(1), { expectedVersion: 'no-stream' });
    const before = await observe(store, ['dup']);
    await expectFailure(
      () =>
        store.appendMany([
          { streamId: 'dup', events: numbered(1), expectedVersion: 1 },
          { streamId: 'dup', events: numbered(1), expectedVersion: 'any' },
        ]),
      'InvalidArgumentError',
    );
    await expectUnchanged(store, before);
  });

  suite.test('rejects a malformed argument', async () => {
    const store = await suite.open();
    const before = await observe(store, ['s']);
    const many = store.appendMany.bind(store) as (value: unknown) => Promise<unknown>;
    await expectFailure(() => many(undefined), 'InvalidArgumentError');
    await expectFailure(() => many({ streamId: 's', events: [], expectedVersion: 'any' }), 'InvalidArgumentError');
    await expectFailure(() => many([null]), 'InvalidArgumentError');
    await expectFailure(() => many([{ streamId: 's', events: numbered(1), expectedVersion: 'any' }, 7]), 'InvalidArgumentError');
    await expectUnchanged(store, before);
  });
}

/**
 * appendMany, in the branch the store declares. Test names carry the capability, so a report
 * shows which behaviour was proven.
 */
export function describeAppendManyCases(suite: EventStoreSuite): void {
  suite.describe(`appendMany (${capabilityLabel(suite.capabilities)})`, () => {
    if (suite.capabilities.atomicMultiStreamAppend) describeAtomicCases(suite);
    else describeRefusedMultiStreamCases(suite);
    describeSharedCases(suite);
  });
}
