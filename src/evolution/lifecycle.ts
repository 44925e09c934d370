import { ConcurrencyError, InvalidArgumentError, isEventfoldError, StreamNotFoundError } from '../errors.js';
import type { AnyEvent, JsonValue, RecordedEvent } from '../events/types.js';
import type { AppendOptions, AppendResult, EventStore, ReadStreamOptions, StreamAppend } from '../store/event-store.js';
import { PagedEventStream, type EventStream } from '../store/event-stream.js';
import type { ExpectedVersion } from '../store/expected-version.js';
import { checkAppendManyShape, checkAppendShape, EventStoreDecorator } from '../store/decorator.js';
import { StreamDeletedError } from './errors.js';

/** The type of the final event that deletes a stream. */
export const STREAM_DELETED = '$StreamDeleted';
/**
 * The type a pruned event is rewritten to: same stream, version, position, id and time; data
 * `null`, no metadata. Readers through `LifecycleEventStore` do not see these placeholders.
 */
export const PRUNED_EVENT = '$Pruned';

export type StreamState =
  | { readonly status: 'missing' }
  | { readonly status: 'live'; readonly version: number }
  | { readonly status: 'deleted'; readonly version: number; readonly deletedAt: Date; readonly reason: string | null };

/** How many times an `'any'`/`'stream-exists'` append re-pins its version after a concurrent write. */
const PIN_RETRIES = 20;

function withoutPruned(page: readonly RecordedEvent[]): readonly RecordedEvent[] {
  return page.some((e) => e.type === PRUNED_EVENT) ? page.filter((e) => e.type !== PRUNED_EVENT) : page;
}

export function isTombstone(event: Pick<RecordedEvent, 'type'>): boolean {
  return event.type === STREAM_DELETED;
}

/**
 * Streams that can be deleted by an event. `tombstone(streamId)` appends a final `$StreamDeleted`
 * event; from then on appends through this layer reject with `StreamDeletedError`, `readStream`
 * (and so Repository loads) reject with it too, while `readAll` keeps showing the whole history,
 * tombstone included: the log keeps it.
 *
 * No read-then-write race: an append with `'any'` or `'stream-exists'` is pinned to the exact
 * version it found live, so a tombstone committed in between makes the store's own version check
 * fail, and the layer then reports the deletion (or re-pins when it was an ordinary write). A
 * numeric expected version is already exact. Writers that bypass this layer are not checked.
 */
export class LifecycleEventStore extends EventStoreDecorator {
  constructor(inner: EventStore) {
    super(inner);
  }

  /** Deletes the stream by appending its tombstone; `StreamNotFoundError` when it has no events. */
  async tombstone(
    streamId: string,
    options: { readonly expectedVersion?: ExpectedVersion; readonly reason?: string } = {},
  ): Promise<AppendResult> {
    const data: JsonValue = { reason: options.reason ?? null };
    const state = await this.streamState(streamId);
    if (state.status === 'missing') throw new StreamNotFoundError(streamId);
    return this.append(streamId, [{ type: STREAM_DELETED, data }], { expectedVersion: options.expectedVersion ?? 'stream-exists' });
  }

  /** Whether the stream is missing, live (with its version) or deleted (with when and why). */
  async streamState(streamId: string): Promise<StreamState> {
    const last = await this.lastEvent(streamId);
    if (last === undefined) return { status: 'missing' };
    if (!isTombstone(last)) return { status: 'live', version: last.version };
    const reason = (last.data as { reason?: unknown } | null)?.reason;
    return { status: 'deleted', version: last.version, deletedAt: last.recordedAt, reason: typeof reason === 'string' ? reason : null };
  }

  override async append(streamId: string, events: readonly AnyEvent[], options: AppendOptions): Promise<AppendResult> {
    checkAppendShape(events, options);
    const [result] = await this.appendMany([{ streamId, events, expectedVersion: options.expectedVersion }]);
    return result!;
  }

  override async appendMany(appends: readonly StreamAppend[]): Promise<AppendResult[]> {
    checkAppendManyShape(appends);
    for (let attempt = 0; ; attempt++) {
      const pinned: StreamAppend[] = [];
      const repinnable = new Set<string>();
      for (const a of appends) {
        if (a.events.some((e) => e?.type === STREAM_DELETED) && a.events[a.events.length - 1]?.type !== STREAM_DELETED) {
          throw new InvalidArgumentError(`A ${STREAM_DELETED} tombstone must be the last event appended to '${a.streamId}'.`);
        }
        if (a.expectedVersion === 'no-stream') {
          pinned.push(a);
          continue;
        }
        const last = await this.lastEvent(a.streamId);
        if (last !== undefined && isTombstone(last)) throw new StreamDeletedError(a.streamId, last.version);
        const version = last?.version ?? 0;
        if ((a.expectedVersion === 'any' || a.expectedVersion === 'stream-exists') && (version > 0 || a.expectedVersion === 'any')) {
          repinnable.add(a.streamId);
          pinned.push({ ...a, expectedVersion: version === 0 ? 'no-stream' : version });
        } else {
          pinned.push(a);
        }
      }
      try {
        return await this.inner.appendMany(pinned);
      } catch (error) {
        if (
          !(error instanceof ConcurrencyError) &&
          !isEventfoldError(error, 'CONCURRENCY_CONFLICT') &&
          !isEventfoldError(error, 'STREAM_ALREADY_EXISTS')
        ) {
          throw error;
        }
        const streamId = (error as ConcurrencyError).streamId;
        const last = await this.lastEvent(streamId);
        if (last !== undefined && isTombstone(last)) throw new StreamDeletedError(streamId, last.version);
        if (!repinnable.has(streamId) || attempt >= PIN_RETRIES) throw error;
      }
    }
  }

  /** Rejects with `StreamDeletedError` when iterated over a deleted stream. */
  override readStream(streamId: string, options?: ReadStreamOptions): EventStream<RecordedEvent> {
    const stream = this.inner.readStream(streamId, options);
    const self = this;
    return new PagedEventStream(async function* () {
      const last = await self.lastEvent(streamId);
      if (last !== undefined && isTombstone(last)) throw new StreamDeletedError(streamId, last.version);
      for await (const page of stream.pages()) {
        const tombstone = page.find(isTombstone);
        if (tombstone !== undefined) throw new StreamDeletedError(streamId, tombstone.version);
        const kept = withoutPruned(page);
        if (kept.length > 0) yield kept;
      }
    });
  }

  /** Pruned placeholders are left out; tombstones stay (the log keeps the deletion). */
  protected override decode(page: readonly RecordedEvent[]): readonly RecordedEvent[] {
    return withoutPruned(page);
  }

  private async lastEvent(streamId: string): Promise<RecordedEvent | undefined> {
    try {
      const [last] = await this.inner.readStream(streamId, { backwards: true, limit: 1 }).toArray();
      return last;
    } catch (error) {
      if (isEventfoldError(error, 'STREAM_NOT_FOUND')) return undefined;
      throw error;
    }
  }
}

/**
 * Physical removal of event payloads, for what the law requires (prefer crypto-shredding where
 * it suffices). Each removed event's row is rewritten as a `$Pruned` placeholder (data `null`, no
 * metadata) at the same version and position, so versions stay contiguous, positions are never
 * reused, and checkpoints stay valid. Implemented by `InMemoryStreamPruning`,
 * `SqliteStreamPruning`, `PostgresStreamPruning` and `NatsStreamPruning` (which erases messages and
 * keeps rewrites of them, see its docs).
 * - `purgeDeletedStream`: prunes every event of a tombstoned stream but the tombstone, and its snapshots.
 * - `truncateBefore`: prunes the events below `version`; the stream's version is unchanged.
 */
export interface StreamPruning {
  purgeDeletedStream(streamId: string): Promise<{ readonly removedEvents: number }>;
  truncateBefore(streamId: string, version: number): Promise<{ readonly removedEvents: number }>;
}

/**
 * The version a stream had at `at` (time travel by time): the version of its last event recorded
 * at or before `at`, 0 when none. Pass it to `repository.load(id, { version })`.
 */
export async function versionAt(store: EventStore, streamId: string, at: Date): Promise<number> {
  if (!(at instanceof Date) || Number.isNaN(at.getTime())) throw new InvalidArgumentError('versionAt takes a valid Date.');
  let version = 0;
  try {
    for await (const page of store.readStream(streamId).pages()) {
      for (const event of page) {
        if (event.recordedAt.getTime() > at.getTime()) return version;
        version = event.version;
      }
    }
  } catch (error) {
    if (isEventfoldError(error, 'STREAM_NOT_FOUND')) return 0;
    throw error;
  }
  return version;
}
