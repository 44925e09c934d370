import { describe, expect, it, vi } from 'vitest';
import { EventBus, InMemoryEventStore, type Event, type RecordedEvent, type SubscriberFailure } from '../src/index.js';

type Ping = Event<'Ping', { n: number }>;
type Pong = Event<'Pong', { m: string }>;
type Msg = Ping | Pong;

async function recorded(): Promise<RecordedEvent[]> {
  const store = new InMemoryEventStore();
  const result = await store.append(
    's',
    [
      { type: 'Ping', data: { n: 1 } },
      { type: 'Pong', data: { m: 'a' } },
      { type: 'Ping', data: { n: 2 } },
    ],
    { expectedVersion: 'any' },
  );
  return [...result.events];
}

describe('EventBus', () => {
  it('delivers by type and to all, in publish order', async () => {
    const bus = new EventBus<Msg>();
    const pings: number[] = [];
    const all: string[] = [];
    bus.subscribe('Ping', (e) => {
      pings.push(e.data.n);
    });
    bus.subscribeAll((e) => {
      all.push(`${e.type}@${e.version}`);
    });
    bus.publish(await recorded());
    expect(pings).toEqual([1, 2]);
    expect(all).toEqual(['Ping@1', 'Pong@2', 'Ping@3']);
  });

  it('unsubscribe stops delivery', async () => {
    const bus = new EventBus<Msg>();
    const got: number[] = [];
    const off = bus.subscribe('Ping', (e) => {
      got.push(e.data.n);
    });
    const events = await recorded();
    bus.publish(events.slice(0, 1));
    off();
    bus.publish(events);
    expect(got).toEqual([1]);
  });

  it('a throwing subscriber does not stop the others; its error goes to onError', async () => {
    const bus = new EventBus<Msg>();
    const failures: SubscriberFailure[] = [];
    bus.onError((f) => failures.push(f));
    const after: number[] = [];
    bus.subscribe('Ping', () => {
      throw new Error('bad');
    }, { name: 'bad-one' });
    bus.subscribe('Ping', (e) => {
      after.push(e.version);
    });
    const events = await recorded();
    expect(() => bus.publish(events)).not.toThrow();
    expect(after).toEqual([1, 3]);
    expect(failures.map((f) => [f.subscriber, f.event.version, (f.error as Error).message])).toEqual([
      ['bad-one', 1, 'bad'],
      ['bad-one', 3, 'bad'],
    ]);
  });

  it('a rejecting subscriber is reported after it settles; drain waits for it', async () => {
    const bus = new EventBus<Msg>();
    const failures: SubscriberFailure[] = [];
    bus.onError((f) => failures.push(f));
    let finished = 0;
    bus.subscribeAll(async (e) => {
      await new Promise((r) => setTimeout(r, 5));
      finished++;
      if (e.type === 'Pong') throw new Error('async bad');
    });
    bus.publish(await recorded());
    expect(finished).toBe(0);
    await bus.drain();
    expect(finished).toBe(3);
    expect(failures).toHaveLength(1);
    expect(failures[0]!.event.type).toBe('Pong');
    expect(failures[0]!.subscriber).toBeUndefined();
  });

  it('a throwing error listener does not break delivery', async () => {
    const bus = new EventBus<Msg>();
    bus.onError(() => {
      throw new Error('listener broke');
    });
    const got: number[] = [];
    bus.subscribeAll(() => {
      throw new Error('x');
    });
    bus.subscribeAll((e) => {
      got.push(e.version);
    });
    expect(() => bus.publish([])).not.toThrow();
    bus.publish(await recorded());
    expect(got).toEqual([1, 2, 3]);
  });

  it('without an error listener, failures go to console.error', async () => {
    const bus = new EventBus<Msg>();
    const spy = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      bus.subscribe('Pong', () => {
        throw new Error('loud');
      }, { name: 'noisy' });
      bus.publish(await recorded());
      expect(spy).toHaveBeenCalledTimes(1);
      expect(String(spy.mock.calls[0]![0])).toContain('noisy');
      expect(String(spy.mock.calls[0]![0])).toContain('Pong');
    } finally {
      spy.mockRestore();
    }
  });

  it('removing the error listener falls back to console.error', async () => {
    const bus = new EventBus<Msg>();
    const failures: SubscriberFailure[] = [];
    const off = bus.onError((f) => failures.push(f));
    bus.subscribe('Pong', () => {
      throw new Error('e');
    });
    const events = await recorded();
    bus.publish(events);
    off();
    const spy = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      bus.publish(events);
      expect(failures).toHaveLength(1);
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
    }
  });

  it('with a logger, failures go to the logger and never to the console', async () => {
    const logged: { level: string; message: string; context: unknown }[] = [];
    const record = (level: string) => (message: string, context?: unknown) => void logged.push({ level, message, context });
    const bus = new EventBus<Msg>({ logger: { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') } });
    const spy = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const boom = new Error('boom');
      bus.subscribe('Pong', () => {
        throw boom;
      }, { name: 'quiet' });
      bus.publish(await recorded());
      expect(spy).not.toHaveBeenCalled();
      expect(logged).toHaveLength(1);
      expect(logged[0]!.level).toBe('error');
      expect(logged[0]!.message).toContain('quiet');
      expect(logged[0]!.context).toMatchObject({ error: boom, subscriber: 'quiet', type: 'Pong' });
    } finally {
      spy.mockRestore();
    }
  });
});
