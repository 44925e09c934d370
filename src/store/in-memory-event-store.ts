import { StoreClosedError, StreamNotFoundError } from '../errors.js';
import type { AnyEvent, RecordedEvent } from '../events/types.js';
import type { EventLimits } from '../events/validation.js';
import type { AppendOptions, AppendResult, EventStore, ReadAllOptions, ReadStreamOptions, StreamAppend } from './event-store.js';
import { PagedEventStream, type EventStream } from './event-stream.js';
import { checkExpectedVersion } from './expected-version.js';
import {
  prepareAppend,
  prepareAppendMany,
  recordEvents,
  resolveLimits,
  resolveLogRange,
  resolveStreamRange,
  type PreparedAppend,
} from './store-input.js';

/**
 * Runs inside an append, after its version checks and before its events become visible. A throw
 * aborts the append: nothing is stored. Synchronous on purpose: no other append can interleave.
 */
export type InMemoryAppendHook = (events: readonly RecordedEvent[]) => void;

export interface InMemoryEventStoreOptions {
  readonly limits?: Partial<EventLimits>;
  /** Events per page handed to `pages()` readers. */
  readonly pageSize?: number;
}

/**
 * The whole port in process memory. For tests and prototypes; it runs the same conformance suite
 * as the durable stores. Every append is one synchronous step, so it is atomic and ordered.
 */
export class InMemoryEventStore implements EventStore {
  private readonly streams = new Map<string, RecordedEvent[]>();
  private readonly log: RecordedEvent[] = [];
  private readonly hooks: InMemoryAppendHook[] = [];
  private readonly limits: EventLimits;
  private readonly pageSize: number;
  private closed = false;

  constructor(options: InMemoryEventStoreOptions = {}) {
    this.limits = resolveLimits(options.limits);
    this.pageSize = options.pageSize ?? 1000;
  }

  /** Registers a hook that runs inside every append (see `InMemoryAppendHook`). Returns a remover. */
  addAppendHook(hook: InMemoryAppendHook): () => void {
    this.hooks.push(hook);
    return () => {
      const index = this.hooks.indexOf(hook);
      if (index >= 0) this.hooks.splice(index, 1);
    };
  }

  async append(streamId: string, events: readonly AnyEvent[], options: AppendOptions): Promise<AppendResult> {
    this.assertOpen();
    const prepared = prepareAppend(streamId, events, options?.expectedVersion, this.limits);
    return this.commit([prepared])[0]!;
  }

  async appendMany(appends: readonly StreamAppend[]): Promise<AppendResult[]> {
    this.assertOpen();
    return this.commit(prepareAppendMany(appends, this.limits));
  }

  private commit(appends: readonly PreparedAppend[]): AppendResult[] {
    for (const append of appends) {
      checkExpectedVersion(append.streamId, append.expectedVersion, this.streams.get(append.streamId)?.length ?? 0);
    }
    const recordedAt = new Date();
    let nextPosition = this.log.length + 1;
    const results: AppendResult[] = [];
    const all: RecordedEvent[] = [];
    for (const append of appends) {
      const version = this.streams.get(append.streamId)?.length ?? 0;
      const first = nextPosition;
      const events = recordEvents(append, version + 1, (i) => first + i, recordedAt);
      nextPosition += events.length;
      for (const e of events) all.push(e);
      results.push({
        streamId: append.streamId,
        version: version + events.length,
        position: events.length === 0 ? 0 : first + events.length - 1,
        events: Object.freeze(events),
      });
    }
    for (const hook of this.hooks) hook(all);
    // Visible only now, after every check and hook passed: the append is all or nothing.
    for (const result of results) {
      if (result.events.length === 0) continue;
      let stream = this.streams.get(result.streamId);
      if (stream === undefined) {
        stream = [];
        this.streams.set(result.streamId, stream);
      }
      for (const e of result.events) stream.push(e);
    }
    for (const e of all) this.log.push(e);
    return results;
  }

  readStream(streamId: string, options?: ReadStreamOptions): EventStream<RecordedEvent> {
    const range = resolveStreamRange(streamId, options);
    const self = this;
    return new PagedEventStream(async function* () {
      self.assertOpen();
      const stream = self.streams.get(streamId);
      if (stream === undefined) throw new StreamNotFoundError(streamId);
      const high = Math.min(range.high, stream.length);
      if (high < range.low || range.limit === 0) return;
      const count = Math.min(high - range.low + 1, range.limit);
      if (!range.backwards) {
        for (let start = range.low - 1; start < range.low - 1 + count; start += self.pageSize) {
          yield stream.slice(start, Math.min(start + self.pageSize, range.low - 1 + count));
        }
      } else {
        const lowest = high - count + 1;
        for (let top = high; top >= lowest; top -= self.pageSize) {
          const bottom = Math.max(lowest, top - self.pageSize + 1);
          yield stream.slice(bottom - 1, top).reverse();
        }
      }
    });
  }

  readAll(options?: ReadAllOptions): EventStream<RecordedEvent> {
    const range = resolveLogRange(options);
    const self = this;
    return new PagedEventStream(async function* () {
      let next = Math.max(1, range.fromPosition);
      let remaining = range.limit;
      while (remaining > 0) {
        self.assertOpen();
        const page = self.log.slice(next - 1, next - 1 + Math.min(self.pageSize, remaining));
        if (page.length === 0) return;
        next += page.length;
        remaining -= page.length;
        yield page;
      }
    });
  }

  async streamVersion(streamId: string): Promise<number> {
    this.assertOpen();
    resolveStreamRange(streamId, undefined);
    return this.streams.get(streamId)?.length ?? 0;
  }

  async headPosition(): Promise<number> {
    this.assertOpen();
    return this.log.length;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError('in-memory event store');
  }
}
