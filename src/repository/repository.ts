import { replayInto, restoreInto, type Aggregate, type AggregateClass, type Snapshottable } from '../aggregate/aggregate.js';
import type { EventBus } from '../bus/event-bus.js';
import { AggregateNotFoundError, InvalidArgumentError, isEventfoldError } from '../errors.js';
import type { AnyEvent, EventMetadata, JsonValue, RecordedEvent } from '../events/types.js';
import type { SnapshotStore } from '../snapshots/snapshot-store.js';
import type { AppendResult, EventStore, StreamAppend } from '../store/event-store.js';
import type { ExpectedVersion } from '../store/expected-version.js';
import { syncPages, type SyncPagedStream } from '../store/sync-pages.js';

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
  /** How many times to reload and re-run after a `ConcurrencyError`. Default 3. */
  readonly retries?: number;
  readonly metadata?: EventMetadata;
}

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
    return this.options.streamPrefix === undefined ? id : `${this.options.streamPrefix}-${id}`;
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

  // One async function behind load and find: one promise per load on the hot path, not two.
  private async fold(id: string, wanted: number | undefined, required: boolean): Promise<A | undefined> {
    if (wanted !== undefined && (!Number.isSafeInteger(wanted) || wanted < 1)) {
      throw new InvalidArgumentError(`version must be an integer >= 1, got ${String(wanted)}.`);
    }
    const streamId = this.streamIdOf(id);
    const aggregate = new this.aggregateClass(id);
    let fromVersion = 1;
    if (this.snapshots !== undefined) {
      const snapshot = await this.snapshots.store.load(
        streamId,
        wanted === undefined
          ? { schemaVersion: this.snapshots.schemaVersion }
          : { maxVersion: wanted, schemaVersion: this.snapshots.schemaVersion },
      );
      if (snapshot !== undefined) {
        restoreInto(aggregate, snapshot.version, () =>
          (aggregate as unknown as Snapshottable<unknown>).restoreSnapshot(snapshot.state),
        );
        fromVersion = snapshot.version + 1;
      }
    }
    const restoredAt = aggregate.version;
    try {
      const stream = this.store.readStream(
        streamId,
        wanted !== undefined ? { fromVersion, toVersion: wanted } : fromVersion > 1 ? { fromVersion } : undefined,
      );
      const inMemory = (stream as Partial<SyncPagedStream<RecordedEvent>>)[syncPages];
      if (inMemory !== undefined) {
        for (const page of inMemory.call(stream)) replayInto(aggregate, page);
      } else {
        for await (const page of stream.pages()) replayInto(aggregate, page);
      }
    } catch (error) {
      if (!isEventfoldError(error, 'STREAM_NOT_FOUND')) throw error;
      if (required) throw new AggregateNotFoundError(id, streamId);
      return undefined;
    }
    if (aggregate.version === 0) {
      if (required) throw new AggregateNotFoundError(id, streamId);
      return undefined;
    }
    if (wanted !== undefined && aggregate.version < wanted) {
      throw new AggregateNotFoundError(id, streamId, wanted, aggregate.version);
    }
    if (wanted === undefined && this.snapshots !== undefined && aggregate.version - restoredAt >= this.snapshots.snapshotEvery) {
      await this.trySnapshot(aggregate, streamId);
    }
    return aggregate;
  }

  /**
   * Appends the aggregate's uncommitted events, expecting the stream to be at the version it was
   * loaded at. On `ConcurrencyError` nothing is written and the aggregate keeps its uncommitted
   * events.
   */
  async save(aggregate: A, options: SaveOptions = {}): Promise<AppendResult> {
    const append = this.pendingAppend(aggregate, options);
    const result = await this.store.append(append.streamId, append.events, { expectedVersion: append.expectedVersion });
    // Awaits only when a snapshot is due: most saves resolve without another turn.
    if (this.markSaved(aggregate, result)) await this.trySnapshot(aggregate, result.streamId);
    return result;
  }

  /**
   * The append that saving `aggregate` would make. With `committed` it lets a `UnitOfWork` save
   * several aggregates in one atomic `appendMany`.
   */
  pendingAppend(aggregate: A, options: SaveOptions = {}): StreamAppend {
    const before = aggregate.persistedVersion;
    const metadata = options.metadata;
    const pending = aggregate.uncommittedEvents;
    return {
      streamId: this.streamIdOf(aggregate.id),
      expectedVersion: options.expectedVersion ?? (before === 0 ? 'no-stream' : before),
      events:
        metadata === undefined
          ? pending
          : pending.map(
              (e): AnyEvent => ({
                type: e.type,
                data: e.data,
                // The store copies metadata anyway; merge (allocate) only when the event has its own.
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
    const retries = options.retries ?? 3;
    if (!Number.isSafeInteger(retries) || retries < 0) {
      throw new InvalidArgumentError(`retries must be an integer >= 0, got ${String(retries)}.`);
    }
    const saveOptions: SaveOptions = options.metadata === undefined ? {} : { metadata: options.metadata };
    for (let attempt = 0; ; attempt++) {
      const aggregate = await this.load(id);
      const decided = decide(aggregate);
      if (decided !== undefined) await decided;
      try {
        await this.save(aggregate, saveOptions);
        return aggregate;
      } catch (error) {
        if (attempt >= retries || !isEventfoldError(error, 'CONCURRENCY_CONFLICT')) throw error;
      }
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
