import { EventfoldError } from '../errors.js';
import type { RecordedEvent } from '../events/types.js';
import { categoryOf } from '../store/read-filter.js';

/**
 * Where a relay delivers the log to other services: RabbitMQ, NATS JetStream, or any transport a
 * small adapter maps (Kafka, SQS). A broker knows how to turn a recorded event into one of its
 * messages (routing key, subject, partition key) and when its server has taken responsibility.
 */
export interface Broker {
  /** A short name for logs and errors: `'rabbitmq'`, `'nats'`. */
  readonly name: string;
  /**
   * Publishes the events in order and resolves only when the broker confirmed every one of them
   * (publisher confirms, acks). Rejects with `BrokerUnavailableError` when the broker cannot be
   * reached or dropped the connection (retry: nothing is lost, some may be delivered twice), or
   * `MessageRefusedError` when the broker refused or could not route a message (not transient).
   * Messages carry the event id as their message id, so a retried batch can be deduplicated.
   */
  publish(events: readonly RecordedEvent[]): Promise<void>;
  close(): Promise<void>;
}

/** The broker cannot be reached or dropped the connection. Transient: retry with backoff. */
export class BrokerUnavailableError extends EventfoldError {
  readonly code = 'BROKER_UNAVAILABLE' as const;
  override readonly transient = true;

  constructor(
    readonly broker: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${broker}: ${message}`, options);
  }
}

/**
 * The broker took the connection but refused messages: negatively acknowledged, or unroutable (no
 * queue bound for the routing key). Not transient: the same message fails the same way until the
 * broker's configuration changes. `eventIds` name the refused events.
 */
export class MessageRefusedError extends EventfoldError {
  readonly code = 'MESSAGE_REFUSED' as const;

  constructor(
    readonly broker: string,
    readonly eventIds: readonly string[],
    reason: string,
  ) {
    super(`${broker} refused ${eventIds.length} message(s) (${reason}): ${eventIds.slice(0, 5).join(', ')}${eventIds.length > 5 ? ', …' : ''}.`);
  }
}

/** The stream's category: the part of its id before the first `-` (`user-42` → `user`), as a Repository names streams. */
export const streamCategory: (streamId: string) => string = categoryOf;

/** Header names every broker adapter sets (AMQP headers, NATS headers). */
export const EVENT_HEADERS = Object.freeze({
  eventId: 'eventfold-event-id',
  type: 'eventfold-type',
  streamId: 'eventfold-stream-id',
  category: 'eventfold-category',
  version: 'eventfold-version',
  position: 'eventfold-position',
  recordedAt: 'eventfold-recorded-at',
  correlationId: 'eventfold-correlation-id',
  causationId: 'eventfold-causation-id',
});

/** What travels in a message's body: the recorded event as JSON. */
export interface EventEnvelope {
  readonly eventId: string;
  readonly type: string;
  readonly streamId: string;
  readonly version: number;
  readonly position: number;
  readonly recordedAt: string;
  readonly data: unknown;
  readonly metadata: Readonly<Record<string, unknown>>;
}

export function toEnvelope(event: RecordedEvent): EventEnvelope {
  return {
    eventId: event.eventId,
    type: event.type,
    streamId: event.streamId,
    version: event.version,
    position: event.position,
    recordedAt: event.recordedAt.toISOString(),
    data: event.data,
    metadata: (event.metadata ?? {}) as Readonly<Record<string, unknown>>,
  };
}

/** The headers of one event's message (string values; ids that are absent are left out). */
export function eventHeaders(event: RecordedEvent): Record<string, string> {
  const metadata = (event.metadata ?? {}) as Readonly<Record<string, unknown>>;
  const headers: Record<string, string> = {
    [EVENT_HEADERS.eventId]: event.eventId,
    [EVENT_HEADERS.type]: event.type,
    [EVENT_HEADERS.streamId]: event.streamId,
    [EVENT_HEADERS.category]: streamCategory(event.streamId),
    [EVENT_HEADERS.version]: String(event.version),
    [EVENT_HEADERS.position]: String(event.position),
    [EVENT_HEADERS.recordedAt]: event.recordedAt.toISOString(),
  };
  if (typeof metadata.correlationId === 'string') headers[EVENT_HEADERS.correlationId] = metadata.correlationId;
  if (typeof metadata.causationId === 'string') headers[EVENT_HEADERS.causationId] = metadata.causationId;
  return headers;
}

/**
 * Reads a message body written by a relay back into an envelope, checking its shape: a consumer
 * treats what arrives from a broker as untrusted input.
 */
export function parseEnvelope(body: Uint8Array | string): EventEnvelope {
  const text = typeof body === 'string' ? body : new TextDecoder('utf-8', { fatal: true }).decode(body);
  const value: unknown = JSON.parse(text);
  const v = value as Record<string, unknown>;
  const ok =
    typeof value === 'object' &&
    value !== null &&
    typeof v.eventId === 'string' &&
    typeof v.type === 'string' &&
    typeof v.streamId === 'string' &&
    Number.isSafeInteger(v.version) &&
    Number.isSafeInteger(v.position) &&
    typeof v.recordedAt === 'string' &&
    'data' in v &&
    typeof v.metadata === 'object' &&
    v.metadata !== null;
  if (!ok) throw new TypeError('Not an eventfold event envelope: expected eventId, type, streamId, version, position, recordedAt, data, metadata.');
  return value as EventEnvelope;
}
