import type { StreamAppend } from '../store/event-store.js';
import type { EventStoreSuite } from './conformance-context.js';
import { contentOf, expectConflict, expectFailure, expectUnchanged, numbered, observe, versionsOf } from './conformance-support.js';
import { expect } from './expect.js';

const CAPABILITY = 'atomicMultiStreamAppend';

/**
 * Where `atomicMultiStreamAppend` is false: an appendMany over two or more distinct streams is
 * refused with `CapabilityNotSupportedError` before anything is written (whatever else is wrong
 * with it: the refusal does not depend on the streams' state), and one over a single stream
 * behaves like an append.
 */
export function describeRefusedMultiStreamCases(suite: EventStoreSuite): void {
  const seededStore = async () => {
    const store = await suite.open();
    await store.append('x', numbered(1, 'x'), { expectedVersion: 'no-stream' });
    await store.append('y', numbered(2, 'y'), { expectedVersion: 'no-stream' });
    return store;
  };

  const refused: [string, StreamAppend[]][] = [
    [
      'two new streams',
      [
        { streamId: 'z', events: numbered(1, 'z'), expectedVersion: 'no-stream' },
        { streamId: 'w', events: numbered(2, 'w'), expectedVersion: 'no-stream' },
      ],
    ],
    [
      'two existing streams at their exact versions',
      [
        { streamId: 'x', events: numbered(1, 'x2'), expectedVersion: 1 },
        { streamId: 'y', events: numbered(1, 'y2'), expectedVersion: 2 },
      ],
    ],
    [
      'three streams, one of them only a version check',
      [
        { streamId: 'x', events: [], expectedVersion: 1 },
        { streamId: 'y', events: numbered(1, 'y2'), expectedVersion: 'stream-exists' },
        { streamId: 'z', events: numbered(1, 'z'), expectedVersion: 'any' },
      ],
    ],
    [
      'two streams, only version checks',
      [
        { streamId: 'x', events: [], expectedVersion: 1 },
        { streamId: 'y', events: [], expectedVersion: 2 },
      ],
    ],
    [
      'two streams with a stale expected version (refused as unsupported, not as a conflict)',
      [
        { streamId: 'x', events: numbered(1, 'x2'), expectedVersion: 7 },
        { streamId: 'y', events: numbered(1, 'y2'), expectedVersion: 'no-stream' },
      ],
    ],
  ];
  for (const [label, entries] of refused) {
    suite.test(`refuses ${label} with CapabilityNotSupportedError and writes nothing`, async () => {
      const store = await seededStore();
      const before = await observe(store, ['x', 'y', 'z', 'w']);
      const error = await expectFailure(() => store.appendMany(entries), 'CapabilityNotSupportedError');
      expect(error.capability).toBe(CAPABILITY);
      await expectUnchanged(store, before);
      expect(await store.headPosition()).toBe(before.head);
      for (const streamId of ['x', 'y', 'z', 'w']) {
        expect(await store.streamVersion(streamId), streamId).toBe(before.streams[streamId]!.version);
      }
    });
  }

  suite.test('the refusal is not transient: a retry is refused the same way, and each stream stays writable alone', async () => {
    const store = await seededStore();
    const entries: StreamAppend[] = [
      { streamId: 'x', events: numbered(1, 'x2'), expectedVersion: 1 },
      { streamId: 'z', events: numbered(1, 'z'), expectedVersion: 'no-stream' },
    ];
    const before = await observe(store, ['x', 'z']);
    for (let attempt = 0; attempt < 3; attempt++) {
      const error = await expectFailure(() => store.appendMany(entries), 'CapabilityNotSupportedError');
      expect(error.capability).toBe(CAPABILITY);
    }
    await expectUnchanged(store, before);
    for (const entry of entries) {
      const [result] = await store.appendMany([entry]);
      expect(result!.streamId).toBe(entry.streamId);
      expect(contentOf(result!.events)).toEqual(contentOf(entry.events as never));
    }
    expect(await store.streamVersion('x')).toBe(2);
    expect(await store.streamVersion('z')).toBe(1);
  });

  suite.test('a single-stream appendMany works like an append: versions, positions and expected-version checks', async () => {
    const store = await seededStore();
    const head = await store.headPosition();
    const [first] = await store.appendMany([{ streamId: 'single', events: numbered(2, 's1'), expectedVersion: 'no-stream' }]);
    expect(first).toMatchObject({ streamId: 'single', version: 2 });
    expect(versionsOf(first!.events)).toEqual([1, 2]);
    expect(first!.events[0]!.position).toBeGreaterThan(head);
    expect(first!.position).toBe(first!.events[1]!.position);
    const [second] = await store.appendMany([{ streamId: 'single', events: numbered(1, 's2'), expectedVersion: 2 }]);
    expect(second!.version).toBe(3);
    expect(second!.position).toBeGreaterThan(first!.position);
    expect(contentOf(await store.readStream('single').toArray())).toEqual([...numbered(2, 's1'), ...numbered(1, 's2')]);

    const [check] = await store.appendMany([{ streamId: 'single', events: [], expectedVersion: 3 }]);
    expect(check).toMatchObject({ streamId: 'single', version: 3, position: 0 });

    const before = await observe(store, ['single', 'x', 'y']);
    const conflict = await expectConflict(() => store.appendMany([{ streamId: 'single', events: numbered(1, 'late'), expectedVersion: 1 }]));
    expect(conflict).toMatchObject({ streamId: 'single', expectedVersion: 1, actualVersion: 3 });
    await expectUnchanged(store, before);
  });
}
