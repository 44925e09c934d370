import type { WakeUpSource } from '../projections/target.js';
import type { NatsEventStore } from './nats-event-store.js';

/**
 * Wakes a projection runner when an event message is published to the store's stream, from any
 * process: a core NATS subscription to `<prefix>.s.*` (JetStream stores the message; core NATS
 * delivers a copy to subscribers too). Lost wake-ups only add latency: the runner polls as well.
 */
export function natsWakeUps(store: NatsEventStore): WakeUpSource {
  return (listener) => {
    const subscription = store.connection.subscribe(store.options.eventSubjects, {
      callback: () => listener(),
    });
    return () => subscription.unsubscribe();
  };
}
