import { inspect, isDeepStrictEqual } from 'node:util';
import { aggregateInternals, type Aggregate, type AggregateClass, type EventsOf } from '../aggregate/aggregate.js';
import type { AnyEvent, Event, EventMetadata } from '../events/types.js';
import { frozenDate } from '../events/frozen-date.js';
import { prepareEvents } from '../events/validation.js';
import { recordEvents } from '../store/store-input.js';

/**
 * given/when/then for aggregates:
 *
 *   given(User, [registered]).when((user) => user.changePassword(hash)).then([{ type: 'PasswordChanged', data: { hash } }]);
 *   given(User, [registered, deactivated]).when((user) => user.changePassword(hash)).thenThrows(UserDeactivatedError);
 *
 * `given` rebuilds the aggregate from plain events (versions 1..n, validated and frozen exactly as
 * a store would record them). `when` runs the command method; `then` compares the events it raised
 * (type and data, plus metadata keys when the expectation names them). When the action returns a
 * promise, `then`/`thenThrows` return promises too: await them.
 */

/** An event the scenario expects to be raised; `metadata`, when given, is matched key by key. */
export type ExpectedEvent<E extends AnyEvent> =
  E extends Event<infer T, infer D, infer M>
    ? { readonly type: T; readonly data: D; readonly metadata?: Partial<M> & EventMetadata }
    : never;

export interface GivenOptions {
  /** The aggregate id (and stream id of the given events). Default `'aggregate-1'`. */
  readonly id?: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any constructor signature will do
type ErrorClass<Err extends Error> = abstract new (...args: any[]) => Err;

/** Thrown when a scenario's expectation does not hold; carries `actual`/`expected` so runners show a diff. */
export class ScenarioAssertionError extends Error {
  readonly showDiff = true;

  constructor(
    message: string,
    readonly actual: unknown,
    readonly expected: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ScenarioAssertionError';
  }
}

/** Starts a scenario: the aggregate as rebuilt from `events` (none: a brand-new aggregate). */
export function given<A extends Aggregate<AnyEvent>>(
  aggregateClass: AggregateClass<A>,
  events: readonly EventsOf<A>[] = [],
  options: GivenOptions = {},
): Given<A> {
  return new Given(aggregateClass, events, options.id ?? 'aggregate-1');
}

export class Given<A extends Aggregate<AnyEvent>> {
  constructor(
    private readonly aggregateClass: AggregateClass<A>,
    private readonly events: readonly EventsOf<A>[],
    private readonly id: string,
  ) {}

  /** A fresh aggregate rebuilt from the given events (each call rebuilds). */
  aggregate(): A {
    const aggregate = new this.aggregateClass(this.id);
    const prepared = prepareEvents(this.id, this.events);
    const recorded = recordEvents({ streamId: this.id, expectedVersion: 'any', events: prepared }, 1, (i) => i + 1, frozenDate(Date.now()));
    aggregate[aggregateInternals].replay(recorded);
    return aggregate;
  }

  /** The command under test. Runs lazily, when `then`/`thenThrows` is called. */
  when(action: (aggregate: A) => PromiseLike<unknown>): AsyncScenario<A>;
  when(action: (aggregate: A) => unknown): Scenario<A>;
  when(action: (aggregate: A) => unknown): Scenario<A> | AsyncScenario<A> {
    // One implementation serves both: it stays synchronous unless the action returns a promise.
    return new ScenarioImpl(() => this.aggregate(), action) as unknown as Scenario<A>;
  }
}

export interface Scenario<A extends Aggregate<AnyEvent>> {
  /** Asserts the action raised exactly `expected` (in order) and returns the aggregate for state checks. */
  then(expected: readonly ExpectedEvent<EventsOf<A>>[]): A;
  /** Asserts the action threw an instance of `errorClass` (and a matching message) and returns it. */
  thenThrows<Err extends Error>(errorClass: ErrorClass<Err>, message?: string | RegExp): Err;
}

export interface AsyncScenario<A extends Aggregate<AnyEvent>> {
  then(expected: readonly ExpectedEvent<EventsOf<A>>[]): Promise<A>;
  thenThrows<Err extends Error>(errorClass: ErrorClass<Err>, message?: string | RegExp): Promise<Err>;
}

type Outcome<A> = { readonly threw: false; readonly aggregate: A } | { readonly threw: true; readonly error: unknown; readonly aggregate: A };

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

class ScenarioImpl<A extends Aggregate<AnyEvent>> {
  constructor(
    private readonly build: () => A,
    private readonly action: (aggregate: A) => unknown,
  ) {}

  then(expected: readonly ExpectedEvent<EventsOf<A>>[]): A | Promise<A> {
    if (!Array.isArray(expected)) {
      // `await scenario` calls then(resolve, reject): say what to do instead of hanging.
      throw new TypeError(
        'then() takes the array of expected events. Do not await a scenario itself; ' +
          'call .then([...events]) or .thenThrows(ErrorClass) on it.',
      );
    }
    return this.run((outcome) => {
      if (outcome.threw) {
        const error = outcome.error;
        throw new ScenarioAssertionError(
          `Expected the action to raise ${describeCount(expected.length)}, but it threw ${describeError(error)}.`,
          error,
          expected,
          { cause: error },
        );
      }
      assertRaised(outcome.aggregate, expected);
      return outcome.aggregate;
    });
  }

  thenThrows<Err extends Error>(errorClass: ErrorClass<Err>, message?: string | RegExp): Err | Promise<Err> {
    return this.run((outcome) => {
      if (!outcome.threw) {
        const raised = outcome.aggregate.uncommittedEvents;
        throw new ScenarioAssertionError(
          `Expected the action to throw ${errorClass.name}, but it completed and raised ${describeCount(raised.length)}` +
            `${raised.length > 0 ? `:\n${describeEvents(raised)}` : '.'}`,
          undefined,
          errorClass.name,
        );
      }
      const error = outcome.error;
      if (!(error instanceof errorClass)) {
        throw new ScenarioAssertionError(
          `Expected the action to throw ${errorClass.name}, but it threw ${describeError(error)}.`,
          describeError(error),
          errorClass.name,
          { cause: error },
        );
      }
      if (message !== undefined) {
        const matches = typeof message === 'string' ? error.message.includes(message) : message.test(error.message);
        if (!matches) {
          throw new ScenarioAssertionError(
            `Expected ${errorClass.name} with a message matching ${inspect(message)}, but the message was ${inspect(error.message)}.`,
            error.message,
            message,
            { cause: error },
          );
        }
      }
      return error;
    });
  }

  /** Runs the action once; sync actions stay sync so failures throw where the test calls then(). */
  private run<R>(check: (outcome: Outcome<A>) => R): R | Promise<R> {
    const aggregate = this.build();
    let result: unknown;
    try {
      result = this.action(aggregate);
    } catch (error) {
      return check({ threw: true, error, aggregate });
    }
    if (!isThenable(result)) return check({ threw: false, aggregate });
    return Promise.resolve(result).then(
      () => check({ threw: false, aggregate }),
      (error: unknown) => check({ threw: true, error, aggregate }),
    );
  }
}

function assertRaised<A extends Aggregate<AnyEvent>>(aggregate: A, expected: readonly ExpectedEvent<EventsOf<A>>[]): void {
  const raised = aggregate.uncommittedEvents;
  // Shape the actual events like the expectation, so a diff shows only real differences.
  const actual = raised.map((event, i) => {
    const wanted = expected[i] as { metadata?: EventMetadata } | undefined;
    if (wanted?.metadata === undefined) return { type: event.type, data: event.data };
    const metadata: Record<string, unknown> = {};
    for (const key of Object.keys(wanted.metadata)) metadata[key] = event.metadata?.[key];
    return { type: event.type, data: event.data, metadata };
  });
  const wantedEvents = expected.map((e) => ({ ...e }));
  if (!isDeepStrictEqual(actual, wantedEvents)) {
    const index = firstDifference(actual, wantedEvents);
    throw new ScenarioAssertionError(
      `Expected ${describeCount(expected.length)} but the aggregate raised ${describeCount(raised.length)}; ` +
        `first difference at #${index}.\nExpected:\n${describeEvents(wantedEvents)}\nActual:\n${describeEvents(actual)}`,
      actual,
      wantedEvents,
    );
  }
  // The store would refuse events that are not JSON; fail here rather than at save time.
  try {
    prepareEvents(aggregate.id, raised);
  } catch (error) {
    throw new ScenarioAssertionError(
      `The aggregate raised an event that no store would accept: ${(error as Error).message}`,
      raised,
      expected,
      { cause: error },
    );
  }
}

function firstDifference(actual: readonly unknown[], expected: readonly unknown[]): number {
  const length = Math.max(actual.length, expected.length);
  for (let i = 0; i < length; i++) {
    if (!isDeepStrictEqual(actual[i], expected[i])) return i;
  }
  return length;
}

function describeCount(count: number): string {
  return count === 0 ? 'no events' : count === 1 ? '1 event' : `${count} events`;
}

function describeEvents(events: readonly { type: string; data: unknown; metadata?: unknown }[]): string {
  if (events.length === 0) return '  (none)';
  return events
    .map((e, i) => {
      const metadata = e.metadata === undefined ? '' : ` metadata ${inspect(e.metadata, { depth: 6, breakLength: Infinity })}`;
      return `  #${i} ${e.type} ${inspect(e.data, { depth: 6, breakLength: Infinity })}${metadata}`;
    })
    .join('\n');
}

function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return inspect(error);
}
