import { isEventfoldError } from '../errors.js';
import type { ProjectionStatus } from '../projections/runner-types.js';
import { Subscription, SubscriptionEventError, type SubscriptionOptions } from '../subscriptions/subscription.js';
import type { Broker } from './broker.js';
import { MessageRefusedError } from './broker.js';

export interface OutboxRelayOptions extends Omit<SubscriptionOptions, 'handle' | 'isTransient'> {
  readonly broker: Broker;
}

/**
 * Publishes the event log to a broker, in log order, at least once. It is a subscription whose
 * handler is `broker.publish(batch)`: the checkpoint moves only after the broker confirmed the
 * whole batch, so the relay's position is never ahead of what the broker holds. Keep the
 * checkpoint in the source database (`SqliteCheckpointStore`, `PostgresCheckpointStore`).
 *
 * - A crash (or a lost connection) between the broker's confirm and the checkpoint re-publishes
 *   at most the last batch: the duplicate window is one batch. Messages carry the event id as
 *   their id, so an inbox (or NATS' deduplication) removes the duplicates.
 * - A broker that cannot be reached is retried with backoff, for as long as the relay runs, and
 *   reported to `onError` each time.
 * - A message the broker refuses (unroutable) is never skipped silently: by default the relay
 *   stops with a typed error naming the event (`poisonEvents: 'stop'`); with `'park'` it is
 *   recorded as a dead letter and the relay goes on.
 */
export class OutboxRelay {
  readonly broker: Broker;
  private readonly subscription: Subscription;

  constructor(options: OutboxRelayOptions) {
    this.broker = options.broker;
    this.subscription = new Subscription({
      ...options,
      isTransient: (error) => isEventfoldError(error, 'BROKER_UNAVAILABLE'),
      handle: async (events) => {
        try {
          await options.broker.publish(events);
        } catch (error) {
          if (error instanceof MessageRefusedError && error.eventIds.length > 0) {
            throw new SubscriptionEventError(error.eventIds[0]!, { cause: error });
          }
          throw error;
        }
      },
    });
  }

  start(): Promise<void> {
    return this.subscription.start();
  }

  /** Finishes the batch in hand (publish and checkpoint) and stops. The broker stays open. */
  stop(): Promise<void> {
    return this.subscription.stop();
  }

  waitUntilCaughtUp(options?: { readonly timeoutMs?: number }): Promise<void> {
    return this.subscription.waitUntilCaughtUp(options);
  }

  get status(): ProjectionStatus {
    return this.subscription.status;
  }

  get deadLetters() {
    return this.subscription.deadLetters;
  }
}
