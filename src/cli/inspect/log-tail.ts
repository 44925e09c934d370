import type { RecordedEvent } from '../../events/types.js';
import type { EventStore } from '../../store/event-store.js';

/**
 * The last `limit` events at or below `head`. Positions can have gaps (NATS numbers a message's
 * events `sequence * 10,000 + i`), so `head - limit` is no guide: look at a window below the head
 * and widen it fourfold until it holds `limit` events or reaches the start of the log.
 */
export async function lastEvents(store: EventStore, head: number, limit: number): Promise<RecordedEvent[]> {
  for (let span = limit; ; span *= 4) {
    const start = Math.max(1, head - span + 1);
    const tail: RecordedEvent[] = [];
    let seen = 0;
    scan: for await (const page of store.readAll({ fromPosition: start }).pages()) {
      for (const event of page) {
        if (event.position > head) break scan;
        seen++;
        tail.push(event);
        if (tail.length > limit) tail.shift();
      }
    }
    if (seen >= limit || start === 1) return tail;
  }
}
