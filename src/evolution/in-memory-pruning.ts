import { InvalidArgumentError, StreamNotFoundError } from '../errors.js';
import type { RecordedEvent } from '../events/types.js';
import { assertReadableStreamId } from '../events/validation.js';
import type { InMemoryEventStore } from '../store/in-memory-event-store.js';
import { PRUNED_EVENT, STREAM_DELETED, type StreamPruning } from './lifecycle.js';

interface InMemoryInternals {
  readonly streams: Map<string, RecordedEvent[]>;
  readonly log: RecordedEvent[];
}

/**
 * `StreamPruning` for `InMemoryEventStore` (tests and prototypes), with the same placeholders as
 * the durable stores. It reaches into the store's arrays, and checks that they look as expected.
 */
export class InMemoryStreamPruning implements StreamPruning {
  private readonly internals: InMemoryInternals;

  constructor(store: InMemoryEventStore) {
    const internals = store as unknown as Partial<InMemoryInternals>;
    if (!(internals.streams instanceof Map) || !Array.isArray(internals.log)) {
      throw new InvalidArgumentError('InMemoryStreamPruning does not recognise this InMemoryEventStore (its internals changed).');
    }
    this.internals = internals as InMemoryInternals;
  }

  async purgeDeletedStream(streamId: string): Promise<{ readonly removedEvents: number }> {
    const events = this.eventsOf(streamId);
    const last = events[events.length - 1]!;
    if (last.type !== STREAM_DELETED) throw new InvalidArgumentError(`Stream '${streamId}' is not deleted: tombstone it before purging its events.`);
    return { removedEvents: this.prune(events, last.version) };
  }

  async truncateBefore(streamId: string, version: number): Promise<{ readonly removedEvents: number }> {
    if (!Number.isSafeInteger(version) || version < 1) throw new InvalidArgumentError(`truncateBefore takes a version >= 1, got ${String(version)}.`);
    const events = this.eventsOf(streamId);
    if (version > events.length) {
      throw new InvalidArgumentError(`Stream '${streamId}' is at version ${events.length}: truncateBefore(${version}) would remove all of it.`);
    }
    return { removedEvents: this.prune(events, version) };
  }

  private eventsOf(streamId: string): RecordedEvent[] {
    assertReadableStreamId(streamId);
    const events = this.internals.streams.get(streamId);
    if (events === undefined || events.length === 0) throw new StreamNotFoundError(streamId);
    return events;
  }

  private prune(events: RecordedEvent[], below: number): number {
    let changed = 0;
    for (let i = 0; i < below - 1 && i < events.length; i++) {
      const event = events[i]!;
      if (event.type === PRUNED_EVENT) continue;
      if (this.internals.log[event.position - 1] !== event) {
        throw new InvalidArgumentError('InMemoryStreamPruning does not recognise this InMemoryEventStore (its log layout changed).');
      }
      const placeholder = Object.freeze({ ...event, type: PRUNED_EVENT, data: null, metadata: Object.freeze({}) }) as RecordedEvent;
      events[i] = placeholder;
      this.internals.log[event.position - 1] = placeholder;
      changed++;
    }
    return changed;
  }
}
