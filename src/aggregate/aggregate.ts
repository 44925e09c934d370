import { EventOutOfOrderError, EventStreamMismatchError, InvalidArgumentError } from '../errors.js';
import type { AnyEvent, EventData, EventMetadata, EventType, RecordedEvent } from '../events/types.js';

/** Internal hooks the Repository uses; not part of the public surface of an aggregate. */
export const aggregateInternals = Symbol('eventfold.aggregateInternals');

/** A class that builds an aggregate from its id, as `Repository` and `fromEvents` need. */
export type AggregateClass<A extends Aggregate<AnyEvent>> = new (id: string) => A;

/** The event union of an aggregate type. */
export type EventsOf<A> = A extends Aggregate<infer E> ? E : never;

/** Implemented by aggregates that can be snapshotted. */
export interface Snapshottable<State> {
  /** The folded state as plain JSON. */
  toSnapshot(): State;
  /** Restores state saved by `toSnapshot`. */
  restoreSnapshot(state: State): void;
}

// Both are assigned by the static block of Aggregate, which can reach its private fields.
/**
 * @internal Folds recorded events into the aggregate; each must follow its version. With `count`,
 * only the first `count` events of the array.
 */
export let replayInto: (
  aggregate: Aggregate<AnyEvent>,
  events: Iterable<RecordedEvent> | readonly RecordedEvent[],
  count?: number,
) => void;
/** @internal Sets the aggregate's version after `restore` put a snapshot's state in place. */
export let restoreInto: (aggregate: Aggregate<AnyEvent>, version: number, restore: () => void) => void;

const NONE: never[] = Object.freeze([]) as never[];

/**
 * Base class of event-sourced aggregates. State changes only through `raise`, which applies the
 * event (the fold step) and records it as uncommitted; loading replays recorded events through
 * the same `apply`. `E` is the union of the aggregate's events, so raising any other type does not
 * compile, and an `apply` that switches on `event.type` can be checked for exhaustiveness with
 * `assertNever`.
 */
export abstract class Aggregate<E extends AnyEvent> {
  #version = 0;
  #persistedVersion = 0;
  /** The stream of the first event folded in: every later one must come from it too. */
  #streamId: string | undefined = undefined;
  // Shared (frozen) while nothing is pending: most loads raise one event or none.
  #uncommitted: E[] = NONE;

  constructor(readonly id: string) {
    if (typeof id !== 'string' || id.length === 0) {
      throw new InvalidArgumentError(`An aggregate id must be a non-empty string, got ${JSON.stringify(id)}.`);
    }
  }

  /** The version of the current state: events loaded plus events raised since. */
  get version(): number {
    return this.#version;
  }

  /** The version the aggregate was loaded (or last saved) at: the expected version of the next save. */
  get persistedVersion(): number {
    return this.#persistedVersion;
  }

  /** Events raised since load or the last save, oldest first. */
  get uncommittedEvents(): readonly E[] {
    return this.#uncommitted;
  }

  /** Forgets the uncommitted events after they were stored. */
  markCommitted(): void {
    this.#uncommitted = NONE;
    this.#persistedVersion = this.#version;
  }

  /** The fold step: update state from one event. Must not fail for a valid event history. */
  protected abstract apply(event: E): void;

  /** Applies a new event and records it as uncommitted. Decide first (throw on a broken rule), then raise. */
  protected raise<T extends EventType<E>>(type: T, data: EventData<E, T>, metadata?: EventMetadata): void {
    const event = (metadata === undefined ? { type, data } : { type, data, metadata }) as unknown as E;
    this.apply(event);
    this.#version++;
    if ((this.#uncommitted as unknown) === NONE) this.#uncommitted = [event];
    else this.#uncommitted.push(event);
  }

  /** Rebuilds an aggregate of the calling subclass from its recorded events. */
  static fromEvents<A extends Aggregate<AnyEvent>>(
    this: AggregateClass<A>,
    id: string,
    events: Iterable<RecordedEvent<EventsOf<A>>>,
  ): A {
    const aggregate = new this(id);
    replayInto(aggregate, events as Iterable<RecordedEvent>);
    return aggregate;
  }

  /** @internal */
  get [aggregateInternals]() {
    return {
      replay: (events: Iterable<RecordedEvent> | readonly RecordedEvent[]): void => replayInto(this, events),
      restore: (version: number, restore: () => void): void => restoreInto(this, version, restore),
    };
  }

  static {
    // Plain functions with access to the private fields: the Repository's hot path calls these
    // directly instead of allocating the closures of the getter above for every load.
    const outOfOrder = (aggregate: Aggregate<AnyEvent>, version: number, event: RecordedEvent): never => {
      aggregate.#version = version;
      aggregate.#persistedVersion = version;
      throw new EventOutOfOrderError(aggregate.id, version + 1, event.version);
    };
    /** Checks an event whose stream differs from `streamId`: the first one sets it, others fail. */
    const streamOf = (aggregate: Aggregate<AnyEvent>, version: number, streamId: string | undefined, event: RecordedEvent): string => {
      if (streamId === undefined) return event.streamId;
      aggregate.#version = version;
      aggregate.#persistedVersion = version;
      aggregate.#streamId = streamId;
      throw new EventStreamMismatchError(aggregate.id, streamId, event.streamId, event.version);
    };
    replayInto = (aggregate, events, count) => {
      if (aggregate.#uncommitted.length > 0) {
        throw new InvalidArgumentError(`Cannot replay events into aggregate '${aggregate.id}' while it has uncommitted events.`);
      }
      let version = aggregate.#version;
      let streamId = aggregate.#streamId;
      if (Array.isArray(events)) {
        // Index loop over a page: no iterator object.
        const array = events as readonly RecordedEvent[];
        const end = count === undefined ? array.length : Math.min(count, array.length);
        for (let i = 0; i < end; i++) {
          const event = array[i]!;
          if (event.version !== version + 1) outOfOrder(aggregate, version, event);
          if (event.streamId !== streamId) streamId = streamOf(aggregate, version, streamId, event);
          aggregate.apply(event as never);
          version++;
        }
      } else {
        for (const event of events) {
          if (event.version !== version + 1) outOfOrder(aggregate, version, event);
          if (event.streamId !== streamId) streamId = streamOf(aggregate, version, streamId, event);
          aggregate.apply(event as never);
          version++;
        }
      }
      aggregate.#version = version;
      aggregate.#persistedVersion = version;
      aggregate.#streamId = streamId;
    };
    restoreInto = (aggregate, version, restore) => {
      restore();
      aggregate.#version = version;
      aggregate.#persistedVersion = version;
    };
  }
}

/** For the `default` branch of an exhaustive switch: fails to compile when a case is missing. */
export function assertNever(value: never, message = 'Unexpected value'): never {
  throw new Error(`${message}: ${JSON.stringify(value)}`);
}
