import { replayInto, restoreInto, type Aggregate, type AggregateClass, type EventsOf, type Snapshottable } from '../aggregate/aggregate.js';
import { backoffDelayMs, resolveBackoffPolicy, sleep, type BackoffPolicy } from '../backoff.js';
import type { EventBus } from '../bus/event-bus.js';
import { AggregateNotFoundError, asAggregateAlreadyExists, InvalidArgumentError, isEventfoldError } from '../errors.js';
import type { AnyEvent, EventMetadata, JsonValue, RecordedEvent } from '../events/types.js';
import type { SnapshotStore } from '../snapshots/snapshot-store.js';
import type { AppendResult, EventStore, ReadStreamOptions, StreamAppend } from '../store/event-store.js';
import type { ExpectedVersion } from '../store/expected-version.js';
import type { EventStream } from '../store/event-stream.js';

export interface SnapshotOptions {
  readonly store: SnapshotStore;
  /** Take a snapshot each time the stream passes a multiple of this many events. */
  readonly snapshotEvery: number;
  /**
   * Version of the snapshot state's shape. Bump it when the aggregate's state changes shape:
   * snapshots of another schema version are ignored and the state is folded from the events.
   */
  readonly schemaVersion?: number;
}

export interface RepositoryOptions {
  /** Stream id of an aggregate is `${streamPrefix}-${id}`; without a prefix it is the id itself. */
  readonly streamPrefix?: string;
  readonly snapshots?: SnapshotOptions;
  /** Recorded events are published here after each successful save. */
  readonly eventBus?: EventBus<AnyEvent>;
  /** Called when a snapshot could not be saved; snapshots are a cache, so the save still succeeds. */
  readonly onSnapshotError?: (error: unknown, aggregateId: string) => void;
}

export interface SaveOptions {
  /** Defaults to the version the aggregate was loaded at (`persistedVersion`, or `'no-stream'` when new). */
  readonly expectedVersion?: ExpectedVersion;
  /** Merged under each event's own metadata, e.g. `{ correlationId, causationId }` of the command. */
  readonly metadata?: EventMetadata;
}

export interface UpdateOptions {
  /** How many times to reload and re-run after a `ConcurrencyError`. Default 10. */
  readonly retries?: number;
  /**
   * Wait between a conflict and the next attempt: capped exponential backoff with jitter, so that
   * writers who collided do not collide again in lockstep. Default `DEFAULT_UPDATE_BACKOFF`.
   */
  readonly backoff?: Partial<BackoffPolicy>;
  readonly metadata?: EventMetadata;
}

/** 2 ms, doubling, at most 250 ms, full jitter. */
export const DEFAULT_UPDATE_BACKOFF: BackoffPolicy = Object.freeze({
  initialDelayMs: 2,
  maxDelayMs: 250,
  factor: 2,
  jitter: 1,
});

/**
 * Loads aggregates by folding their stream (from the newest usable snapshot), saves their
 * uncommitted events with an optimistic version check, and publishes what it saved.
 */
export class Repository<A extends Aggregate<AnyEvent>> {
  private readonly snapshots: Required<SnapshotOptions> | undefined;

  constructor(
    private readonly store: EventStore,
    private readonly aggregateClass: AggregateClass<A>,
    private readonly options: RepositoryOptions = {},
  ) {
    if (options.snapshots !== undefined) {
      const { snapshotEvery, schemaVersion = 1 } = options.snapshots;
      if (!Number.isSafeInteger(snapshotEvery) || snapshotEvery < 1) {
        throw new InvalidArgumentError(`snapshotEvery must be a positive integer, got ${String(snapshotEvery)}.`);
      }
      const proto = aggregateClass.prototype as Partial<Snapshottable<unknown>>;
      if (typeof proto.toSnapshot !== 'function' || typeof proto.restoreSnapshot !== 'function') {
        throw new InvalidArgumentError(
          `${aggregateClass.name} cannot be snapshotted: implement toSnapshot() and restoreSnapshot(state).`,
        );
      }
      this.snapshots = { store: options.snapshots.store, snapshotEvery, schemaVersion };
    }
  }

  /** The stream id that holds the aggregate's events. */
  streamIdOf(id: string): string {
    const prefix = this.options.streamPrefix;
    return prefix === undefined ? id : `${prefix}-${id}`;
  }

  /**
   * The aggregate's recorded events, typed with its event union: `event.data` is narrowed by
   * `event.type`. Reads the stream as `store.readStream` does (versions, backwards, limit); a
   * missing aggregate rejects with `StreamNotFoundError` when iterated.
   */
  history(id: string, options?: ReadStreamOptions): EventStream<RecordedEvent<EventsOf<A>>> {
    // The stream holds what this repository's aggregate raised: its own event union.
    return this.store.readStream(this.streamIdOf(id), options) as unknown as EventStream<RecordedEvent<EventsOf<A>>>;
  }

  /**
   * Loads the aggregate: its latest state, or with `version` its state as of that version (time
   * travel). Throws `AggregateNotFoundError` when the stream is empty or shorter than `version`.
   */
  load(id: string, options?: { readonly version?: number }): Promise<A> {
    return this.fold(id, options?.version, true) as Promise<A>;
  }

  /** Like `load`, but resolves to `undefined` when the aggregate has no events. */
  find(id: string, options?: { readonly version?: number }): Promise<A | undefined> {
    return this.fold(id, options?.version, false);
  }

  /** One fold behind load, find and update: from the newest usable snapshot when configured. */
  private async fold(id: string, wanted: number | undefined, required: boolean): Promise<A | undefined> {
    if (wanted !== undefined && (!Number.isSafeInteger(wanted) || wanted < 1)) {
      throw new InvalidArgumentError(`version must be an integer >= 1, got ${String(wanted)}.`);
    }
    if (this.snapshots !== undefined) return this.foldFromSnapshot(id, wanted, required);
    const streamId = this.streamIdOf(id);
    let stream: EventStream<RecordedEvent>;
    try {
      stream = this.store.readStream(streamId, wanted !== undefined ? { toVersion: wanted } : undefined);
    } catch (error) {
      return this.notFound(error, id, streamId, required);
    }
    return this.foldPages(id, streamId, new this.aggregateClass(id), stream, wanted, required);
  }

  private async foldFromSnapshot(id: string, wanted: number | undefined, required: boolean): Promise<A | undefined> {
    const snapshots = this.snapshots!;
    const streamId = this.streamIdOf(id);
    const aggregate = new this.aggregateClass(id);
    let fromVersion = 1;
    const snapshot = await snapshots.store.load(
      streamId,
      wanted === undefined ? { schemaVersion: snapshots.schemaVersion } : { maxVersion: wanted, schemaVersion: snapshots.schemaVersion },
    );
    if (snapshot !== undefined) {
      restoreInto(aggregate, snapshot.version, () => (aggregate as unknown as Snapshottable<unknown>).restoreSnapshot(snapshot.state));
      fromVersion = snapshot.version + 1;
    }
    const restoredAt = aggregate.version;
    let stream: EventStream<RecordedEvent>;
    try {
      stream = this.store.readStream(
        streamId,
        wanted !== undefined ? { fromVersion, toVersion: wanted } : fromVersion > 1 ? { fromVersion } : undefined,
      );
    } catch (error) {
      return this.notFound(error, id, streamId, required);
    }
    const found = await this.foldPages(id, streamId, aggregate, stream, wanted, required);
    if (found !== undefined && wanted === undefined && found.version - restoredAt >= snapshots.snapshotEvery) {
      await this.trySnapshot(found, streamId);
    }
    return found;
  }

  private async foldPages(
    id: string,
    streamId: string,
    aggregate: A,
    stream: EventStream<RecordedEvent>,
    wanted: number | undefined,
    required: boolean,
  ): Promise<A | undefined> {
    try {
      for await (const page of stream.pages()) replayInto(aggregate, page);
    } catch (error) {
      return this.notFound(error, id, streamId, required);
    }
    return this.folded(id, streamId, aggregate, wanted, required);
  }

  /** The end of a fold: an empty stream is a missing aggregate; a short one misses `wanted`. */
  private folded(id: string, streamId: string, aggregate: A, wanted: number | undefined, required: boolean): A | undefined {
    if (aggregate.version === 0) return this.notFound(undefined, id, streamId, required);
    if (wanted !== undefined && aggregate.version < wanted) {
      throw new AggregateNotFoundError(id, streamId, wanted, aggregate.version);
    }
    return aggregate;
  }

  /** A missing stream: `undefined` for find, `AggregateNotFoundError` for load; other errors pass. */
  private notFound(error: unknown, id: string, streamId: string, required: boolean): undefined {
    if (error !== undefined && !isEventfoldError(error, 'STREAM_NOT_FOUND')) throw error;
    if (required) throw new AggregateNotFoundError(id, streamId);
    return undefined;
  }

  /**
   * Appends the aggregate's uncommitted events, expecting the stream to be at the version it was
   * loaded at. On `ConcurrencyError` nothing is written and the aggregate keeps its uncommitted
   * events.
   */
  async save(aggregate: A, options: SaveOptions = {}): Promise<AppendResult> {
    try {
      return await this.saveRaw(aggregate, options);
    } catch (error) {
      throw asAggregateAlreadyExists(error, aggregate.id);
    }
  }

  /** `save` with the store's errors as they are (`update` retries on their conflicts). */
  private async saveRaw(aggregate: A, options: SaveOptions): Promise<AppendResult> {
    const append = this.pendingAppend(aggregate, options);
    const result = await this.store.append(append.streamId, append.events, { expectedVersion: append.expectedVersion });
    // Awaits only when a snapshot is due.
    if (this.markSaved(aggregate, result)) await this.trySnapshot(aggregate, result.streamId);
    return result;
  }

  private expectedVersionOf(aggregate: A, options: SaveOptions): ExpectedVersion {
    const before = aggregate.persistedVersion;
    return options.expectedVersion ?? (before === 0 ? 'no-stream' : before);
  }

  /**
   * The append that saving `aggregate` would make. With `committed` it lets a `UnitOfWork` save
   * several aggregates in one atomic `appendMany`.
   */
  pendingAppend(aggregate: A, options: SaveOptions = {}): StreamAppend {
    const metadata = options.metadata;
    const pending = aggregate.uncommittedEvents;
    return {
      streamId: this.streamIdOf(aggregate.id),
      expectedVersion: this.expectedVersionOf(aggregate, options),
      events:
        metadata === undefined
          ? pending
          : pending.map(
              (e): AnyEvent => ({
                type: e.type,
                data: e.data,
                // The store copies metadata anyway (the same object once per append); merge
                // (allocate) only when the event has its own.
                metadata: e.metadata === undefined ? metadata : { ...metadata, ...e.metadata },
              }),
            ),
    };
  }

  /** Marks the aggregate committed after its append succeeded, publishes, and snapshots when due. */
  async committed(aggregate: A, result: AppendResult): Promise<void> {
    if (this.markSaved(aggregate, result)) await this.trySnapshot(aggregate, result.streamId);
  }

  /** Marks committed and publishes; returns true when the save crossed a snapshot boundary. */
  private markSaved(aggregate: A, result: AppendResult): boolean {
    const before = aggregate.persistedVersion;
    aggregate.markCommitted();
    if (this.options.eventBus !== undefined && result.events.length > 0) this.options.eventBus.publish(result.events);
    if (this.snapshots === undefined) return false;
    const every = this.snapshots.snapshotEvery;
    return Math.floor(result.version / every) > Math.floor(before / every);
  }

  /**
   * Loads the aggregate, runs `decide` on it and saves; on a concurrency conflict reloads and runs
   * `decide` again, up to `retries` times. `decide` must only raise events (no outside effects),
   * since it may run more than once. Resolves to the saved aggregate.
   */
  async update(id: string, decide: (aggregate: A) => void | Promise<void>, options: UpdateOptions = {}): Promise<A> {
    const retries = options.retries ?? 10;
    if (!Number.isSafeInteger(retries) || retries < 0) {
      throw new InvalidArgumentError(`retries must be an integer >= 0, got ${String(retries)}.`);
    }
    const backoff =
      options.backoff === undefined ? DEFAULT_UPDATE_BACKOFF : resolveBackoffPolicy(DEFAULT_UPDATE_BACKOFF, options.backoff, 'backoff');
    const saveOptions: SaveOptions = options.metadata === undefined ? {} : { metadata: options.metadata };
    for (let attempt = 0; ; attempt++) {
      const aggregate = (await this.fold(id, undefined, true)) as A;
      await decide(aggregate);
      try {
        await this.saveRaw(aggregate, saveOptions);
        return aggregate;
      } catch (error) {
        if (attempt >= retries || !isEventfoldError(error, 'CONCURRENCY_CONFLICT')) throw asAggregateAlreadyExists(error, id);
      }
      await sleep(backoffDelayMs(backoff, attempt + 1));
    }
  }

  private async trySnapshot(aggregate: A, streamId: string): Promise<void> {
    const snapshots = this.snapshots!;
    try {
      await snapshots.store.save({
        streamId,
        version: aggregate.version,
        schemaVersion: snapshots.schemaVersion,
        state: (aggregate as unknown as Snapshottable<JsonValue>).toSnapshot(),
        takenAt: new Date(),
      });
    } catch (error) {
      this.options.onSnapshotError?.(error, aggregate.id);
    }
  }
}
