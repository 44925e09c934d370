import { StoreClosedError, StreamNotFoundError } from '../errors.js';
import type { AnyEvent, RecordedEvent } from '../events/types.js';
import type { EventLimits } from '../events/validation.js';
import {
  FULL_CAPABILITIES,
  type AppendOptions,
  type AppendResult,
  type EventStore,
  type EventStoreCapabilities,
  type ReadAllOptions,
  type ReadStreamOptions,
  type StreamAppend,
} from './event-store.js';
import { matchesFilter } from './read-filter.js';
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
  type StreamRange,
} from './store-input.js';
import { frozenDate } from '../events/frozen-date.js';

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
  readonly capabilities: EventStoreCapabilities = FULL_CAPABILITIES;
  private readonly streams = new Map<string, RecordedEvent[]>();
  private readonly log: RecordedEvent[] = [];
  private readonly hooks: InMemoryAppendHook[] = [];
  private readonly limits: EventLimits;
  private readonly pageSize: number;
  private closed = false;
  private lastRecordedAt = frozenDate(0);
  /** Made once: every read checks it, and a closure per read was measurable. */
  private readonly openCheck = (): void => this.assertOpen();

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
    return this.commitOne(prepared);
  }

  async appendMany(appends: readonly StreamAppend[]): Promise<AppendResult[]> {
    this.assertOpen();
    return this.commit(prepareAppendMany(appends, this.limits));
  }

  /** `commit` for the common single-stream append, without its per-append arrays. */
  private commitOne(append: PreparedAppend): AppendResult {
    const existing = this.streams.get(append.streamId);
    const version = existing?.length ?? 0;
    checkExpectedVersion(append.streamId, append.expectedVersion, version);
    const first = this.log.length + 1;
    // Events of a stream share its first event's id string: appends often pass a fresh (concatenated) one.
    const streamId = existing === undefined ? append.streamId : existing[0]!.streamId;
    const events = Object.freeze(recordEvents(append, version + 1, (i) => first + i, this.now(), undefined, streamId));
    for (const hook of this.hooks) hook(events);
    const result: AppendResult = {
      streamId,
      version: version + events.length,
      position: events.length === 0 ? 0 : first + events.length - 1,
      events,
    };
    if (events.length === 0) return result;
    // Visible only now, after the check and every hook passed: the append is all or nothing.
    let stream = existing;
    if (stream === undefined) {
      stream = [];
      this.streams.set(append.streamId, stream);
    }
    for (let i = 0; i < events.length; i++) {
      stream.push(events[i]!);
      this.log.push(events[i]!);
    }
    return result;
  }

  /**
   * The commit time. Appends within the same millisecond share one Date (as the events of one
   * append always did): a Date per event was a fifth of the store's memory. Treat it as read-only.
   */
  private now(): Date {
    const ms = Date.now();
    if (ms !== this.lastRecordedAt.getTime()) this.lastRecordedAt = frozenDate(ms);
    return this.lastRecordedAt;
  }

  private commit(appends: readonly PreparedAppend[]): AppendResult[] {
    for (const append of appends) {
      checkExpectedVersion(append.streamId, append.expectedVersion, this.streams.get(append.streamId)?.length ?? 0);
    }
    const recordedAt = this.now();
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
    return new StreamRead(this.streams, streamId, range, this.pageSize, this.openCheck);
  }

  readAll(options?: ReadAllOptions): EventStream<RecordedEvent> {
    const range = resolveLogRange(options);
    const self = this;
    return new PagedEventStream(async function* () {
      let next = Math.max(1, range.fromPosition);
      let remaining = range.limit;
      const filter = range.filter;
      while (remaining > 0) {
        self.assertOpen();
        if (filter !== undefined) {
          // Scan until a page of matches (or the end): positions skipped by the filter are gaps.
          const page: RecordedEvent[] = [];
          const want = Math.min(self.pageSize, remaining);
          while (page.length < want && next <= self.log.length) {
            const event = self.log[next - 1]!;
            next++;
            if (matchesFilter(event, filter)) page.push(event);
          }
          if (page.length === 0) return;
          remaining -= page.length;
          yield page;
          continue;
        }
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

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * The pages of one `readStream`, as a plain async iterator rather than an async generator: most
 * loads read short streams, where the generator's machinery cost more than the read itself.
 * Bounds are fixed at the first `next()`; the stream array only grows, so later pages are stable.
 */
class StreamPages implements AsyncIterableIterator<readonly RecordedEvent[]> {
  private started = false;
  private stream: readonly RecordedEvent[] = [];
  /** Forward: next 0-based index to read. Backwards: next (highest) version to read. */
  private cursor = 0;
  /** Forward: index to stop before. Backwards: lowest version to read. */
  private end = 0;

  constructor(
    private readonly streams: ReadonlyMap<string, readonly RecordedEvent[]>,
    private readonly streamId: string,
    private readonly range: StreamRange,
    private readonly pageSize: number,
    private readonly assertOpen: () => void,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }


  next(): Promise<IteratorResult<readonly RecordedEvent[], undefined>> {
    try {
      return Promise.resolve(this.step());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  return(): Promise<IteratorResult<readonly RecordedEvent[], undefined>> {
    this.started = true;
    this.cursor = 0;
    this.end = this.range.backwards ? 1 : 0;
    return Promise.resolve(DONE);
  }

  /** Every remaining page at once, synchronously. */
  all(): Array<readonly RecordedEvent[]> {
    const pages: Array<readonly RecordedEvent[]> = [];
    for (let result = this.step(); result.done !== true; result = this.step()) pages.push(result.value);
    return pages;
  }

  private step(): IteratorResult<readonly RecordedEvent[], undefined> {
    if (!this.started) this.start();
    if (!this.range.backwards) {
      if (this.cursor >= this.end) return DONE;
      const stop = Math.min(this.cursor + this.pageSize, this.end);
      const page = this.stream.slice(this.cursor, stop);
      this.cursor = stop;
      return { done: false, value: page };
    }
    if (this.cursor < this.end) return DONE;
    const bottom = Math.max(this.end, this.cursor - this.pageSize + 1);
    const page = this.stream.slice(bottom - 1, this.cursor).reverse();
    this.cursor = bottom - 1;
    return { done: false, value: page };
  }

  private start(): void {
    this.started = true;
    // Empty until proven otherwise (also after a throw below): forward 0 >= 0, backwards 0 < 1.
    this.cursor = 0;
    this.end = this.range.backwards ? 1 : 0;
    this.assertOpen();
    const stream = this.streams.get(this.streamId);
    if (stream === undefined) throw new StreamNotFoundError(this.streamId);
    const { low, limit, backwards } = this.range;
    const high = Math.min(this.range.high, stream.length);
    if (high < low || limit === 0) return;
    const count = Math.min(high - low + 1, limit);
    this.stream = stream;
    if (!backwards) {
      this.cursor = low - 1;
      this.end = low - 1 + count;
    } else {
      this.cursor = high;
      this.end = high - count + 1;
    }
  }
}

/** One `readStream` of the in-memory store. Lazy like every `EventStream` (each iteration reads anew). */
class StreamRead implements EventStream<RecordedEvent> {
  constructor(
    private readonly streams: ReadonlyMap<string, readonly RecordedEvent[]>,
    private readonly streamId: string,
    private readonly range: StreamRange,
    private readonly pageSize: number,
    private readonly assertOpen: () => void,
  ) {}

  pages(): AsyncIterableIterator<readonly RecordedEvent[]> {
    return new StreamPages(this.streams, this.streamId, this.range, this.pageSize, this.assertOpen);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<RecordedEvent> {
    for await (const page of this.pages()) {
      for (const event of page) yield event;
    }
  }

  async toArray(): Promise<RecordedEvent[]> {
    const all: RecordedEvent[] = [];
    const pages = new StreamPages(this.streams, this.streamId, this.range, this.pageSize, this.assertOpen).all();
    for (const page of pages) for (const event of page) all.push(event);
    return all;
  }
}
