import { DuplicateHandlerError, HandlerNotFoundError, InvalidArgumentError } from '../errors.js';
import type { EventMetadata } from '../events/types.js';
import { newId } from '../events/ids.js';
import { frozenMetadata } from '../events/validation.js';

/** An imperative request to change state (`RegisterUser`), handled by exactly one handler. */
export interface Command<Type extends string = string, Data = unknown> {
  readonly type: Type;
  readonly data: Data;
  /** Identifies this command; becomes the `causationId` of the events it causes. */
  readonly commandId?: string;
  /** Links everything caused by one user action; defaults to the commandId. */
  readonly correlationId?: string;
}

export type AnyCommand = Command<string, unknown>;

/** What a handler knows about the dispatch, ready to pass to `repository.save(…, { metadata })`. */
export interface CommandContext {
  readonly commandId: string;
  readonly correlationId: string;
  /** `{ correlationId, causationId }` for the events this command causes. */
  readonly metadata: EventMetadata & { readonly correlationId: string; readonly causationId: string };
}

export type CommandHandler<C extends AnyCommand, R> = (command: C, context: CommandContext) => R | Promise<R>;

/** Wraps dispatch: logging, authorisation, idempotency, transactions. Call `next()` to go on. */
export type CommandMiddleware = (command: AnyCommand, context: CommandContext, next: () => Promise<unknown>) => Promise<unknown>;

type HandlerEntry = (command: never, context: CommandContext) => unknown;

/**
 * Routes each command to its one handler. The type records what was registered, so dispatching an
 * unregistered command type does not compile and the result is typed:
 *
 * ```ts
 * const bus = new CommandBus()
 *   .register('RegisterUser', async (c: RegisterUser) => ({ userId: c.data.userId }));
 * const { userId } = await bus.dispatch({ type: 'RegisterUser', data: … });
 * ```
 */
export class CommandBus<Handlers extends Record<string, HandlerEntry> = {}> {
  private readonly handlers = new Map<string, CommandHandler<AnyCommand, unknown>>();
  private readonly middleware: CommandMiddleware[] = [];

  register<T extends string, C extends Command<T, unknown>, R>(
    type: T,
    handler: CommandHandler<C, R>,
  ): CommandBus<Handlers & Record<T, (command: C, context: CommandContext) => R>> {
    if (typeof type !== 'string' || type.length === 0) {
      throw new InvalidArgumentError('A command type must be a non-empty string.');
    }
    if (this.handlers.has(type)) throw new DuplicateHandlerError('command', type);
    this.handlers.set(type, handler as CommandHandler<AnyCommand, unknown>);
    return this as unknown as CommandBus<Handlers & Record<T, (command: C, context: CommandContext) => R>>;
  }

  /** Adds middleware; the first added is the outermost. */
  use(middleware: CommandMiddleware): this {
    this.middleware.push(middleware);
    return this;
  }

  /** True when a handler is registered for `type`. */
  has(type: string): boolean {
    return this.handlers.has(type);
  }

  // Not `async`: the handler's own promise is handed back as is, saving a promise and a turn per
  // command; every failure (bad input, missing handler, a handler that throws) still rejects.
  dispatch<T extends keyof Handlers & string>(
    command: Parameters<Handlers[T]>[0] & { readonly type: T },
  ): Promise<Awaited<ReturnType<Handlers[T]>>> {
    try {
      return Promise.resolve(this.run(command as AnyCommand)) as Promise<Awaited<ReturnType<Handlers[T]>>>;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private run(cmd: AnyCommand): unknown {
    if (typeof cmd !== 'object' || cmd === null || typeof cmd.type !== 'string') {
      throw new InvalidArgumentError('A command must be an object with a string type.');
    }
    const handler = this.handlers.get(cmd.type);
    if (handler === undefined) throw new HandlerNotFoundError('command', cmd.type);
    const commandId = cmd.commandId ?? newId();
    const correlationId = cmd.correlationId ?? commandId;
    const context: CommandContext = {
      commandId,
      correlationId,
      // Frozen and validated once here: every event of the command shares it without a copy.
      metadata: frozenMetadata(correlationId, commandId),
    };
    if (this.middleware.length === 0) return handler(cmd, context);
    const run = (index: number): Promise<unknown> => {
      const middleware = this.middleware[index];
      if (middleware === undefined) return Promise.resolve(handler(cmd, context));
      return middleware(cmd, context, () => run(index + 1));
    };
    return run(0);
  }
}
