/** A JSON value: what event data and metadata are made of, so they read back exactly as written. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Metadata travels with an event; `correlationId`/`causationId` link it to what caused it. */
export interface EventMetadata {
  readonly correlationId?: string;
  readonly causationId?: string;
  readonly [key: string]: unknown;
}

/**
 * A new event, named in the past tense (`UserRegistered`). `Type` is a string literal so a union of
 * events is a discriminated union on `type`.
 */
export interface Event<
  Type extends string = string,
  Data = unknown,
  Metadata extends EventMetadata = EventMetadata,
> {
  readonly type: Type;
  readonly data: Data;
  readonly metadata?: Metadata;
}

/** Any event type; the bound used by generic code. */
export type AnyEvent = Event<string, unknown, EventMetadata>;

/** An event as stored: immutable (deeply frozen), with its place in its stream and in the log. */
export type RecordedEvent<E extends AnyEvent = AnyEvent> = E extends Event<infer T, infer D, infer M>
  ? {
      readonly type: T;
      readonly data: D;
      readonly metadata: M & EventMetadata;
      /** The stream this event belongs to. */
      readonly streamId: string;
      /** 1-based position of the event in its stream; equals the stream version after it. */
      readonly version: number;
      /** Global position in the store's log; grows in commit order. */
      readonly position: number;
      /** Unique id (UUID v4) given at append. */
      readonly eventId: string;
      readonly recordedAt: Date;
    }
  : never;

/** The event types of a union, e.g. `'UserRegistered' | 'PasswordChanged'`. */
export type EventType<E extends AnyEvent> = E['type'];

/** The data of the member of union `E` whose type is `T`. */
export type EventData<E extends AnyEvent, T extends EventType<E>> = Extract<E, { type: T }>['data'];

/** Builds a typed event; saves writing object literals with `as const`. */
export function event<T extends string, D, M extends EventMetadata = EventMetadata>(
  type: T,
  data: D,
  metadata?: M,
): Event<T, D, M> {
  return metadata === undefined ? { type, data } : { type, data, metadata };
}
