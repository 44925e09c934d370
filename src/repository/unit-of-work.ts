import type { Aggregate } from '../aggregate/aggregate.js';
import { asAggregateAlreadyExists, InvalidArgumentError, isEventfoldError } from '../errors.js';
import type { AnyEvent } from '../events/types.js';
import type { AppendResult, EventStore, StreamAppend } from '../store/event-store.js';
import type { Repository, SaveOptions } from './repository.js';

interface Entry {
  readonly append: StreamAppend;
  /** Set for an aggregate's entry (not for a pure version check). */
  readonly aggregateId?: string;
  readonly complete: (result: AppendResult) => Promise<void>;
}

/**
 * Saves several aggregates, possibly of different repositories, in one atomic `appendMany`: either
 * every stream gets its events or none does. This is how a registration reserves a unique user
 * name (a `username-…` stream written with `'no-stream'`) together with `UserRegistered`.
 */
export class UnitOfWork {
  private readonly entries: Entry[] = [];

  constructor(private readonly store: EventStore) {}

  /** Adds an aggregate to save; `options` as for `Repository.save`. */
  add<A extends Aggregate<AnyEvent>>(repository: Repository<A>, aggregate: A, options: SaveOptions = {}): this {
    const append = repository.pendingAppend(aggregate, options);
    if (this.entries.some((e) => e.append.streamId === append.streamId)) {
      throw new InvalidArgumentError(`Stream '${append.streamId}' is already part of this unit of work.`);
    }
    this.entries.push({ append, aggregateId: aggregate.id, complete: (result) => repository.committed(aggregate, result) });
    return this;
  }

  /** Adds a pure version check on a stream, written nothing (e.g. "this stream must still be at 3"). */
  expect(streamId: string, expectedVersion: StreamAppend['expectedVersion']): this {
    this.entries.push({ append: { streamId, events: [], expectedVersion }, complete: async () => undefined });
    return this;
  }

  /** Appends everything atomically. On `ConcurrencyError` nothing is written and every aggregate keeps its events. */
  async commit(): Promise<AppendResult[]> {
    let results: AppendResult[];
    try {
      results = await this.store.appendMany(this.entries.map((e) => e.append));
    } catch (error) {
      // A new aggregate whose stream exists is reported as such, like `Repository.save` does.
      const streamId = isEventfoldError(error, 'STREAM_ALREADY_EXISTS') ? (error as { streamId?: unknown }).streamId : undefined;
      const entry = this.entries.find((e) => e.aggregateId !== undefined && e.append.streamId === streamId);
      throw entry?.aggregateId === undefined ? error : asAggregateAlreadyExists(error, entry.aggregateId);
    }
    for (let i = 0; i < results.length; i++) await this.entries[i]!.complete(results[i]!);
    return results;
  }
}
