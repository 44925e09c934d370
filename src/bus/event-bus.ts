import { EventEmitter } from 'eventemitter3';
import type { AnyEvent, EventType, RecordedEvent } from '../events/types.js';
import { consoleLogger, type Logger } from '../logging.js';

export type EventHandler<E extends AnyEvent> = (event: RecordedEvent<E>) => void | Promise<void>;

export interface SubscriberFailure {
  readonly error: unknown;
  readonly event: RecordedEvent;
  /** The subscription's name, when it was given one. */
  readonly subscriber: string | undefined;
}

const ALL = Symbol('all');
const FAILURE = Symbol('failure');

/**
 * In-process publish/subscribe of recorded events, after they were committed. Delivery is
 * best-effort and in publish order per subscriber: a subscriber that throws (or rejects) neither
 * fails the publisher nor stops the other subscribers; its error is reported to `onError`
 * listeners. For durable, checkpointed delivery use a projection subscription instead.
 */
export interface EventBusOptions {
  /** Where failures go when no `onError` listener is registered. Default: `consoleLogger`. */
  readonly logger?: Logger;
}

export class EventBus<E extends AnyEvent = AnyEvent> {
  private readonly emitter = new EventEmitter();
  private pending = new Set<Promise<void>>();
  private readonly logger: Logger;

  constructor(options: EventBusOptions = {}) {
    this.logger = options.logger ?? consoleLogger;
  }

  /** Subscribes to one event type. Returns an unsubscribe function. */
  subscribe<T extends EventType<E>>(
    type: T,
    handler: EventHandler<Extract<E, { type: T }>>,
    options: { readonly name?: string } = {},
  ): () => void {
    return this.listen(type, handler as EventHandler<E>, options.name);
  }

  /** Subscribes to every event. Returns an unsubscribe function. */
  subscribeAll(handler: EventHandler<E>, options: { readonly name?: string } = {}): () => void {
    return this.listen(ALL, handler, options.name);
  }

  /** Listens for subscriber failures. Without any listener, failures go to the bus's `logger`. */
  onError(listener: (failure: SubscriberFailure) => void): () => void {
    this.emitter.on(FAILURE, listener);
    return () => this.emitter.off(FAILURE, listener);
  }

  /** Delivers committed events to the subscribers of their type and to those of all events. */
  publish(events: readonly RecordedEvent[]): void {
    for (const event of events) {
      this.emitter.emit(event.type, event);
      this.emitter.emit(ALL, event);
    }
  }

  /** Resolves when every asynchronous handler started so far has settled. For tests and shutdown. */
  async drain(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private listen(key: string | symbol, handler: EventHandler<E>, name: string | undefined): () => void {
    const wrapped = (event: RecordedEvent): void => {
      try {
        const result = handler(event as RecordedEvent<E>);
        if (result !== undefined && typeof (result as Promise<void>).then === 'function') {
          const tracked = (result as Promise<void>).then(
            () => undefined,
            (error: unknown) => this.report(error, event, name),
          );
          this.pending.add(tracked);
          void tracked.finally(() => this.pending.delete(tracked));
        }
      } catch (error) {
        this.report(error, event, name);
      }
    };
    this.emitter.on(key, wrapped);
    return () => this.emitter.off(key, wrapped);
  }

  private report(error: unknown, event: RecordedEvent, subscriber: string | undefined): void {
    const failure: SubscriberFailure = { error, event, subscriber };
    if (this.emitter.listenerCount(FAILURE) === 0) {
      this.logger.error(`subscriber ${subscriber ?? '(unnamed)'} failed on ${event.type} (${event.streamId}@${event.version})`, {
        error,
        subscriber,
        streamId: event.streamId,
        version: event.version,
        type: event.type,
      });
      return;
    }
    try {
      this.emitter.emit(FAILURE, failure);
    } catch {
      // An error listener that throws must not break delivery to the remaining subscribers.
    }
  }
}
