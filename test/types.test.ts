/**
 * Compile-time guarantees. `tsc --noEmit -p .` checks this file: every `@ts-expect-error` line
 * MUST be a type error, or the typecheck fails ("Unused '@ts-expect-error' directive"). At run
 * time the same lines are executed where that is meaningful, to show what the types protect from.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  Aggregate,
  assertNever,
  CommandBus,
  HandlerNotFoundError,
  InMemoryEventStore,
  QueryBus,
  Repository,
  type Command,
  type Event,
  type Query,
} from '../src/index.js';

type Started = Event<'Started', { at: string }>;
type Stopped = Event<'Stopped', { reason: string }>;
type Paused = Event<'Paused', null>;
type TimerEvent = Started | Stopped | Paused;

class Timer extends Aggregate<TimerEvent> {
  running = false;

  start(): void {
    this.raise('Started', { at: '2024-01-01T00:00:00Z' });
  }

  raiseUnknownType(): void {
    // @ts-expect-error 'Exploded' is not in the Timer's event union
    this.raise('Exploded', { at: 'now' });
  }

  raiseWrongShape(): void {
    // @ts-expect-error Stopped needs { reason: string }, not { at: string }
    this.raise('Stopped', { at: 'now' });
  }

  raiseMissingData(): void {
    // @ts-expect-error Paused carries null, not an object
    this.raise('Paused', { reason: 'x' });
  }

  protected apply(event: TimerEvent): void {
    switch (event.type) {
      case 'Started':
        this.running = true;
        break;
      case 'Stopped':
      case 'Paused':
        this.running = false;
        break;
      default:
        assertNever(event);
    }
  }
}

/** Forgets 'Paused': the compiler must reject the assertNever call. */
class ForgetfulTimer extends Aggregate<TimerEvent> {
  pause(): void {
    this.raise('Paused', null);
  }

  protected apply(event: TimerEvent): void {
    switch (event.type) {
      case 'Started':
      case 'Stopped':
        break;
      default:
        // @ts-expect-error not exhaustive: 'Paused' is still possible here
        assertNever(event);
    }
  }
}

type Ping = Command<'Ping', { n: number }>;
type GetN = Query<'GetN', { id: string }>;

describe('compile-time checks (enforced by tsc; run-time behaviour shown alongside)', () => {
  it('raising a type outside the union is a type error, and the exhaustive apply throws on it at run time', () => {
    const t = new Timer('t');
    t.start();
    expect(t.running).toBe(true);
    expect(() => t.raiseUnknownType()).toThrow(/Unexpected value/);
    // raise applies before recording, so the rejected event was not recorded.
    expect(t.uncommittedEvents.map((e) => e.type)).toEqual(['Started']);
  });

  it('wrong data shapes are type errors', () => {
    const t = new Timer('t');
    t.raiseWrongShape();
    t.raiseMissingData();
    // The types are what stands between these and the store.
    expect(t.uncommittedEvents).toEqual([
      { type: 'Stopped', data: { at: 'now' } },
      { type: 'Paused', data: { reason: 'x' } },
    ]);
  });

  it('a non-exhaustive apply does not compile; at run time the forgotten event reaches assertNever', () => {
    expect(() => new ForgetfulTimer('f').pause()).toThrow(/Unexpected value.*Paused/);
  });

  it('dispatching an unregistered command type does not compile; at run time it is HandlerNotFoundError', async () => {
    const bus = new CommandBus().register('Ping', (c: Ping) => c.data.n * 2);
    const doubled = await bus.dispatch({ type: 'Ping', data: { n: 21 } });
    expectTypeOf(doubled).toEqualTypeOf<number>();
    expect(doubled).toBe(42);
    // @ts-expect-error 'Pong' was never registered
    await expect(bus.dispatch({ type: 'Pong', data: { n: 1 } })).rejects.toBeInstanceOf(HandlerNotFoundError);
    // @ts-expect-error wrong data for a registered command
    await expect(bus.dispatch({ type: 'Ping', data: { n: 'one' } })).resolves.toBeNaN();
    // @ts-expect-error an empty bus accepts no command at all
    await expect(new CommandBus().dispatch({ type: 'Ping', data: { n: 1 } })).rejects.toBeInstanceOf(HandlerNotFoundError);
  });

  it('queries are typed the same way', async () => {
    const bus = new QueryBus().register('GetN', (q: GetN) => q.params.id.length);
    const n = await bus.execute({ type: 'GetN', params: { id: 'abc' } });
    expectTypeOf(n).toEqualTypeOf<number>();
    expect(n).toBe(3);
    // @ts-expect-error 'GetM' was never registered
    await expect(bus.execute({ type: 'GetM', params: {} })).rejects.toBeInstanceOf(HandlerNotFoundError);
  });

  it('fromEvents returns the subclass type', () => {
    const t = Timer.fromEvents('t', []);
    expectTypeOf(t).toEqualTypeOf<Timer>();
    expect(t).toBeInstanceOf(Timer);
    expect(t.version).toBe(0);
  });
});

describe('typed history', () => {
  it('Repository.history gives events typed by the aggregate union, narrowed by type', async () => {
    const timers = new Repository(new InMemoryEventStore(), Timer, { streamPrefix: 'timer' });
    const timer = new Timer('t-1');
    timer.start();
    await timers.save(timer);
    const seen: string[] = [];
    for await (const event of timers.history('t-1')) {
      expectTypeOf(event.type).toEqualTypeOf<'Started' | 'Stopped' | 'Paused'>();
      if (event.type === 'Started') {
        expectTypeOf(event.data).toEqualTypeOf<{ at: string }>();
        seen.push(event.data.at);
        // @ts-expect-error a Started event has no reason
        void event.data.reason;
      }
      expect(event.streamId).toBe('timer-t-1');
    }
    expect(seen).toEqual(['2024-01-01T00:00:00Z']);
    await expect(timers.history('missing').toArray()).rejects.toMatchObject({ code: 'STREAM_NOT_FOUND' });
  });
});
