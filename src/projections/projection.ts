import { InvalidArgumentError } from '../errors.js';
import type { AnyEvent, EventType, RecordedEvent } from '../events/types.js';
import type { MaybePromise } from '../consumers/maybe-promise.js';
import { ProjectionHandlerError } from './errors.js';

export type { MaybePromise };

/** Applies one event to the read model through `ctx`, the read model's transaction. */
export type ProjectionHandler<E extends AnyEvent, Ctx> = (event: RecordedEvent<E>, ctx: Ctx) => MaybePromise<void>;

/** One optional handler per event type of the union `E`; keys outside the union do not compile. */
export type ProjectionHandlers<E extends AnyEvent, Ctx> = {
  readonly [T in EventType<E>]?: ProjectionHandler<Extract<E, { type: T }>, Ctx>;
};

/** What to do with an event whose type has no handler: skip it (default) or stop with an error. */
export type UnknownEventPolicy = 'skip' | 'fail';

export interface ProjectionDefinition<E extends AnyEvent, Ctx> {
  /** Identifies the projection's checkpoint and lock; 1–200 characters, no control characters. */
  readonly name: string;
  /** Bump it when the handlers change meaning: a runner then rebuilds the read model. Default 1. */
  readonly version?: number;
  readonly handlers: ProjectionHandlers<E, Ctx>;
  /** Handles every event whose type has no handler in `handlers` (then `unknownEvents` never applies). */
  readonly any?: ProjectionHandler<E, Ctx>;
  readonly unknownEvents?: UnknownEventPolicy;
  /** Creates the read model's tables; idempotent, run when a runner starts or an inline projection is added. */
  readonly setup?: (ctx: Ctx) => MaybePromise<void>;
  /** Empties the read model; needed for rebuilds. Runs in the same transaction as the checkpoint reset. */
  readonly reset?: (ctx: Ctx) => MaybePromise<void>;
}

/** A validated projection definition: what runners and inline hooks consume. */
export interface Projection<E extends AnyEvent, Ctx> {
  readonly name: string;
  readonly version: number;
  readonly unknownEvents: UnknownEventPolicy;
  readonly handlers: ProjectionHandlers<E, Ctx>;
  readonly any: ProjectionHandler<E, Ctx> | undefined;
  readonly setup: ((ctx: Ctx) => MaybePromise<void>) | undefined;
  readonly reset: ((ctx: Ctx) => MaybePromise<void>) | undefined;
}

/**
 * Defines a projection over the event union `E` for read models reached through `Ctx`
 * (`SqliteProjectionContext`, `PostgresProjectionContext`, `InMemoryProjectionContext`, or your own).
 * Each handler receives the event narrowed to its type.
 */
export function defineProjection<E extends AnyEvent, Ctx>(definition: ProjectionDefinition<E, Ctx>): Projection<E, Ctx> {
  if (typeof definition !== 'object' || definition === null) {
    throw new InvalidArgumentError('defineProjection takes { name, version?, handlers, unknownEvents?, setup?, reset? }.');
  }
  assertValidProjectionName(definition.name);
  const version = definition.version ?? 1;
  if (!Number.isSafeInteger(version) || version < 1 || version > 2_147_483_647) {
    throw new InvalidArgumentError(`Projection '${definition.name}': version must be a positive integer, got ${String(version)}.`);
  }
  const unknownEvents = definition.unknownEvents ?? 'skip';
  if (unknownEvents !== 'skip' && unknownEvents !== 'fail') {
    throw new InvalidArgumentError(`Projection '${definition.name}': unknownEvents must be 'skip' or 'fail'.`);
  }
  if (typeof definition.handlers !== 'object' || definition.handlers === null) {
    throw new InvalidArgumentError(`Projection '${definition.name}': handlers must be an object keyed by event type.`);
  }
  for (const [type, handler] of Object.entries(definition.handlers)) {
    if (typeof handler !== 'function') {
      throw new InvalidArgumentError(`Projection '${definition.name}': the handler for '${type}' is not a function.`);
    }
  }
  if (definition.any !== undefined && typeof definition.any !== 'function') {
    throw new InvalidArgumentError(`Projection '${definition.name}': any must be a function.`);
  }
  for (const hook of ['setup', 'reset'] as const) {
    if (definition[hook] !== undefined && typeof definition[hook] !== 'function') {
      throw new InvalidArgumentError(`Projection '${definition.name}': ${hook} must be a function.`);
    }
  }
  return Object.freeze({
    name: definition.name,
    version,
    unknownEvents,
    // A null-prototype copy: 'toString' or '__proto__' event types never hit Object.prototype.
    handlers: Object.freeze(Object.assign(Object.create(null), definition.handlers)) as ProjectionHandlers<E, Ctx>,
    any: definition.any,
    setup: definition.setup,
    reset: definition.reset,
  });
}

export function assertValidProjectionName(name: unknown): asserts name is string {
  // eslint-disable-next-line no-control-regex
  if (typeof name !== 'string' || name.length === 0 || name.length > 200 || /[\u0000-\u001f\u007f]/.test(name)) {
    throw new InvalidArgumentError(
      `A projection name must be a string of 1–200 characters without control characters, got ${JSON.stringify(name)}.`,
    );
  }
}

type AnyHandler<Ctx> = (event: RecordedEvent, ctx: Ctx) => MaybePromise<void>;

function handlerFor<Ctx>(projection: Projection<AnyEvent, Ctx>, event: RecordedEvent): AnyHandler<Ctx> | undefined {
  const handler = (projection.handlers as Record<string, AnyHandler<Ctx> | undefined>)[event.type] ?? (projection.any as AnyHandler<Ctx> | undefined);
  if (handler === undefined && projection.unknownEvents === 'fail') {
    throw new ProjectionHandlerError(
      projection.name,
      event,
      new Error(`no handler for event type '${event.type}' and unknownEvents is 'fail'`),
    );
  }
  return handler;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/**
 * Applies events in order, synchronously (in-memory and SQLite read models). A handler that throws —
 * or returns a promise, which a synchronous transaction cannot wait for — surfaces as a
 * `ProjectionHandlerError` naming the event.
 */
export function applyEventsSync<E extends AnyEvent, Ctx>(
  projection: Projection<E, Ctx>,
  events: readonly RecordedEvent[],
  ctx: Ctx,
): void {
  const p = projection as unknown as Projection<AnyEvent, Ctx>;
  for (const event of events) {
    const handler = handlerFor(p, event);
    if (handler === undefined) continue;
    let result: unknown;
    try {
      result = handler(event, ctx);
    } catch (error) {
      throw new ProjectionHandlerError(p.name, event, error);
    }
    if (isThenable(result)) {
      // Keep the rejection from going unhandled; the transaction is rolled back either way.
      Promise.resolve(result).catch(() => undefined);
      throw new ProjectionHandlerError(
        p.name,
        event,
        new Error('the handler returned a promise, but handlers of this read model run inside a synchronous transaction; make it synchronous'),
      );
    }
  }
}

/** Applies events in order, awaiting handlers that return promises (PostgreSQL read models). */
export async function applyEventsAsync<E extends AnyEvent, Ctx>(
  projection: Projection<E, Ctx>,
  events: readonly RecordedEvent[],
  ctx: Ctx,
): Promise<void> {
  const p = projection as unknown as Projection<AnyEvent, Ctx>;
  for (const event of events) {
    const handler = handlerFor(p, event);
    if (handler === undefined) continue;
    try {
      const result = handler(event, ctx);
      // Only await real promises: a synchronous handler costs no extra microtask per event.
      if (isThenable(result)) await result;
    } catch (error) {
      throw new ProjectionHandlerError(p.name, event, error);
    }
  }
}

/** Runs a `setup`/`reset` hook in a synchronous transaction, refusing promises. */
export function runHookSync<Ctx>(projectionName: string, hookName: string, hook: (ctx: Ctx) => MaybePromise<void>, ctx: Ctx): void {
  const result = hook(ctx);
  if (isThenable(result)) {
    Promise.resolve(result).catch(() => undefined);
    throw new InvalidArgumentError(
      `Projection '${projectionName}': ${hookName} returned a promise, but this read model's transactions are synchronous; make it synchronous.`,
    );
  }
}
