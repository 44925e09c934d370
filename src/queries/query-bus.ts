import { DuplicateHandlerError, HandlerNotFoundError, InvalidArgumentError } from '../errors.js';

/** A request for data from a read model (`ListUsers`); never changes state. */
export interface Query<Type extends string = string, Params = unknown> {
  readonly type: Type;
  readonly params: Params;
}

export type AnyQuery = Query<string, unknown>;

export type QueryHandler<Q extends AnyQuery, R> = (query: Q) => R | Promise<R>;

type HandlerEntry = (query: never) => unknown;

/**
 * Routes each query to its one handler; the read side's counterpart of `CommandBus`. Handlers read
 * read models only, never aggregates or the event store's write path.
 */
export class QueryBus<Handlers extends Record<string, HandlerEntry> = {}> {
  private readonly handlers = new Map<string, QueryHandler<AnyQuery, unknown>>();

  register<T extends string, Q extends Query<T, unknown>, R>(
    type: T,
    handler: QueryHandler<Q, R>,
  ): QueryBus<Handlers & Record<T, (query: Q) => R>> {
    if (typeof type !== 'string' || type.length === 0) {
      throw new InvalidArgumentError('A query type must be a non-empty string.');
    }
    if (this.handlers.has(type)) throw new DuplicateHandlerError('query', type);
    this.handlers.set(type, handler as QueryHandler<AnyQuery, unknown>);
    return this as unknown as QueryBus<Handlers & Record<T, (query: Q) => R>>;
  }

  async execute<T extends keyof Handlers & string>(
    query: Parameters<Handlers[T]>[0] & { readonly type: T },
  ): Promise<Awaited<ReturnType<Handlers[T]>>> {
    const q = query as AnyQuery;
    if (typeof q !== 'object' || q === null || typeof q.type !== 'string') {
      throw new InvalidArgumentError('A query must be an object with a string type.');
    }
    const handler = this.handlers.get(q.type);
    if (handler === undefined) throw new HandlerNotFoundError('query', q.type);
    return (await handler(q)) as Awaited<ReturnType<Handlers[T]>>;
  }
}
