import { describe, expect, it } from 'vitest';
import { ConcurrencyError, InMemoryEventStore, type RecordedEvent } from '../src/index.js';
import { describeEventStoreConformance } from '../src/testing/index.js';

describeEventStoreConformance('InMemoryEventStore', () => new InMemoryEventStore(), {
  framework: { describe, it },
  createStoreWithLimits: (limits) => new InMemoryEventStore({ limits }),
});

// A tiny page size makes every read cross page boundaries.
describeEventStoreConformance('InMemoryEventStore (pageSize 7)', () => new InMemoryEventStore({ pageSize: 7 }), {
  framework: { describe, it },
  createStoreWithLimits: (limits) => new InMemoryEventStore({ limits, pageSize: 7 }),
});

describe('InMemoryEventStore append hooks', () => {
  const event = (n: number) => ({ type: 'Counted', data: { n } });

  it('see the recorded events of each append, across all streams of an appendMany', async () => {
    const store = new InMemoryEventStore();
    const seen: RecordedEvent[][] = [];
    store.addAppendHook((events) => seen.push([...events]));
    const first = await store.append('a', [event(1), event(2)], { expectedVersion: 'no-stream' });
    const many = await store.appendMany([
      { streamId: 'a', events: [event(3)], expectedVersion: 2 },
      { streamId: 'b', events: [event(4)], expectedVersion: 'no-stream' },
    ]);
    expect(seen).toHaveLength(2);
    expect(seen[0]).toEqual(first.events);
    expect(seen[1]).toEqual(many.flatMap((r) => r.events));
    expect(seen[1]!.map((e) => [e.streamId, e.version, e.position])).toEqual([
      ['a', 3, 3],
      ['b', 1, 4],
    ]);
    expect(seen.flat().every((e) => Object.isFrozen(e))).toBe(true);
  });

  it('a throwing hook aborts the whole append: nothing is stored and the error reaches the caller', async () => {
    const store = new InMemoryEventStore();
    await store.append('a', [event(1)], { expectedVersion: 'no-stream' });
    const boom = new Error('read model rejected it');
    const remove = store.addAppendHook((events) => {
      if (events.some((e) => e.streamId === 'b')) throw boom;
    });
    await expect(
      store.appendMany([
        { streamId: 'a', events: [event(2)], expectedVersion: 1 },
        { streamId: 'b', events: [event(3)], expectedVersion: 'no-stream' },
      ]),
    ).rejects.toBe(boom);
    await expect(store.append('b', [event(3)], { expectedVersion: 'any' })).rejects.toBe(boom);
    expect(await store.streamVersion('a')).toBe(1);
    expect(await store.streamVersion('b')).toBe(0);
    expect(await store.headPosition()).toBe(1);
    expect(await store.readAll().toArray()).toHaveLength(1);

    remove();
    const result = await store.append('b', [event(3)], { expectedVersion: 'no-stream' });
    expect(result.events[0]!.position).toBe(2);
    expect(await store.readStream('b').toArray()).toEqual(result.events);
  });

  it('does not run when the version check fails, and stops running once removed', async () => {
    const store = new InMemoryEventStore();
    let calls = 0;
    const remove = store.addAppendHook(() => {
      calls++;
    });
    await store.append('a', [event(1)], { expectedVersion: 'no-stream' });
    await expect(store.append('a', [event(2)], { expectedVersion: 'no-stream' })).rejects.toBeInstanceOf(ConcurrencyError);
    expect(calls).toBe(1);
    remove();
    remove();
    await store.append('a', [event(2)], { expectedVersion: 1 });
    expect(calls).toBe(1);
  });

  it('runs hooks in registration order; a later hook failing undoes the append for all', async () => {
    const store = new InMemoryEventStore();
    const order: string[] = [];
    store.addAppendHook(() => order.push('first'));
    store.addAppendHook(() => {
      order.push('second');
      throw new Error('no');
    });
    await expect(store.append('a', [event(1)], { expectedVersion: 'any' })).rejects.toThrow('no');
    expect(order).toEqual(['first', 'second']);
    expect(await store.headPosition()).toBe(0);
  });
});
