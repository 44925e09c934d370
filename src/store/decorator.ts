import type { AnyEvent, RecordedEvent } from '../events/types.js';
import type {
  AppendOptions,
  AppendResult,
  EventStore,
  EventStoreCapabilities,
  ReadAllOptions,
  ReadStreamOptions,
  StreamAppend,
} from './event-store.js';
import { PagedEventStream, type EventStream } from './event-stream.js';
import { InvalidArgumentError, InvalidEventError } from '../errors.js';

/**
 * The shape checks a layer needs before it looks inside an append (the inner store checks the
 * rest): malformed calls fail with the same typed errors a store gives, before any write.
 */
export function checkAppendShape(events: unknown, options: unknown): void {
  if (!Array.isArray(events)) throw new InvalidEventError('append takes an array of events.');
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('append needs options with an expectedVersion, e.g. { expectedVersion: "any" }.');
  }
}

export function checkAppendManyShape(appends: unknown): void {
  if (!Array.isArray(appends)) throw new InvalidArgumentError('appendMany takes an array of { streamId, events, expectedVersion }.');
  for (const entry of appends as unknown[]) {
    if (typeof entry !== 'object' || entry === null) throw new InvalidArgumentError('appendMany takes an array of { streamId, events, expectedVersion }.');
    if (!Array.isArray((entry as { events?: unknown }).events)) throw new InvalidEventError('appendMany: each entry needs an array of events.');
  }
}

/**
 * A layer over any `EventStore` that rewrites events on the way in (`encode`) and out (`decode`).
 * Every read path goes through `decode`: `readStream`, `readAll` (so subscriptions and projection
 * runners), Repository loads and time travel, and the events returned by appends (which event
 * buses publish). Versions, positions and ids pass through unchanged, so expected-version checks
 * and checkpoints mean the same as on the inner store.
 */
export abstract class EventStoreDecorator implements EventStore {
  constructor(protected readonly inner: EventStore) {}

  get capabilities(): EventStoreCapabilities {
    return this.inner.capabilities;
  }

  /** Rewrites the events of one append before they reach the inner store. Default: unchanged. */
  protected encode(_streamId: string, events: readonly AnyEvent[]): readonly AnyEvent[] | Promise<readonly AnyEvent[]> {
    return events;
  }

  /** Rewrites a page of stored events for readers. Default: unchanged. */
  protected decode(page: readonly RecordedEvent[]): readonly RecordedEvent[] | Promise<readonly RecordedEvent[]> {
    return page;
  }

  async append(streamId: string, events: readonly AnyEvent[], options: AppendOptions): Promise<AppendResult> {
    checkAppendShape(events, options);
    const encoded = await this.encode(streamId, events);
    return this.decodeResult(await this.inner.append(streamId, encoded, options));
  }

  async appendMany(appends: readonly StreamAppend[]): Promise<AppendResult[]> {
    checkAppendManyShape(appends);
    const encoded: StreamAppend[] = [];
    for (const a of appends) encoded.push({ streamId: a.streamId, expectedVersion: a.expectedVersion, events: await this.encode(a.streamId, a.events) });
    const results = await this.inner.appendMany(encoded);
    const decoded: AppendResult[] = [];
    for (const r of results) decoded.push(await this.decodeResult(r));
    return decoded;
  }

  protected async decodeResult(result: AppendResult): Promise<AppendResult> {
    if (result.events.length === 0) return result;
    return { ...result, events: Object.freeze([...(await this.decode(result.events))]) };
  }

  readStream(streamId: string, options?: ReadStreamOptions): EventStream<RecordedEvent> {
    return this.decodeStream(this.inner.readStream(streamId, options));
  }

  readAll(options?: ReadAllOptions): EventStream<RecordedEvent> {
    return this.decodeStream(this.inner.readAll(options));
  }

  /** The inner stream is opened eagerly, so bad read options throw where the inner store throws them. */
  protected decodeStream(stream: EventStream<RecordedEvent>): EventStream<RecordedEvent> {
    const self = this;
    return new PagedEventStream(async function* () {
      for await (const page of stream.pages()) {
        const decoded = await self.decode(page);
        if (decoded.length > 0) yield decoded;
      }
    });
  }

  streamVersion(streamId: string): Promise<number> {
    return this.inner.streamVersion(streamId);
  }

  headPosition(): Promise<number> {
    return this.inner.headPosition();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
