import type { AnyCommand } from '../commands/command-bus.js';
import { InvalidArgumentError } from '../errors.js';
import type { AnyEvent, EventType, RecordedEvent } from '../events/types.js';
import type { MaybePromise } from '../projections/projection.js';
import type { ProjectionStatus } from '../projections/runner-types.js';
import { Subscription, SubscriptionEventError, type SubscriptionOptions } from './subscription.js';

/** What a process manager decides on one event: the commands to send (none is fine). */
export type Reaction<E extends AnyEvent, C extends AnyCommand> = (event: RecordedEvent<E>) => MaybePromise<readonly C[] | undefined>;

export interface ProcessManagerDefinition<E extends AnyEvent, C extends AnyCommand> {
  /** Names its subscription (checkpoint, lock, dead letters) and prefixes its command ids. */
  readonly name: string;
  /** One reaction per event type it cares about; only those types are read (filtered by the store). */
  readonly on: { readonly [T in EventType<E>]?: Reaction<Extract<E, { type: T }>, C> };
}

export interface ProcessManagerOptions<E extends AnyEvent, C extends AnyCommand>
  extends Omit<SubscriptionOptions, 'handle' | 'name' | 'filter'> {
  readonly processManager: ProcessManagerDefinition<E, C>;
  /**
   * Sends one command, e.g. `(command) => bus.dispatch(command)`. It must deduplicate by
   * `commandId` (the `IdempotentCommands` middleware does): the same event can be processed again
   * after a crash, and then yields the same commands with the same ids.
   */
  readonly dispatch: (command: C & { readonly commandId: string; readonly correlationId: string }) => Promise<unknown>;
}

/**
 * The id of the `index`-th command a process manager sends for an event: the same on every
 * redelivery, so a handler that deduplicates by command id makes the effect exactly once.
 */
export function processManagerCommandId(processManager: string, eventId: string, index: number): string {
  return `pm:${processManager}:${eventId}:${index}`;
}

/**
 * Reacts to events by sending commands: a saga or policy ("when a user is deactivated, release
 * the name"). It is a subscription to the event types it reacts to, so it has its own checkpoint,
 * lock, retries and dead letters. Delivery is at least once; the effect is exactly once **by
 * construction**: every command gets a deterministic id (`pm:<name>:<event id>:<index>`) and
 * carries the event's correlation id, with the event as its cause, so the command side (with
 * `IdempotentCommands`) stores nothing new for a command it already handled. A process manager
 * that needs state keeps it in an aggregate of its own, changed by the commands it sends, so its
 * state changes take the same idempotent path.
 */
export class ProcessManager<E extends AnyEvent, C extends AnyCommand> {
  readonly name: string;
  private readonly subscription: Subscription;

  constructor(options: ProcessManagerOptions<E, C>) {
    const definition = options.processManager;
    const types = Object.keys(definition?.on ?? {});
    if (types.length === 0) throw new InvalidArgumentError('A process manager needs at least one reaction in `on`.');
    for (const type of types) {
      if (typeof (definition.on as Record<string, unknown>)[type] !== 'function') {
        throw new InvalidArgumentError(`Process manager '${definition.name}': the reaction to '${type}' is not a function.`);
      }
    }
    this.name = definition.name;
    const reactions = definition.on as Readonly<Record<string, Reaction<AnyEvent, C>>>;
    this.subscription = new Subscription({
      ...options,
      name: definition.name,
      filter: { types },
      handle: async (events) => {
        for (const event of events) {
          const reaction = reactions[event.type];
          if (reaction === undefined) continue;
          let commands: readonly C[] | undefined;
          try {
            commands = await reaction(event);
          } catch (error) {
            throw new SubscriptionEventError(event.eventId, { cause: error });
          }
          const correlationId = typeof event.metadata?.correlationId === 'string' ? event.metadata.correlationId : event.eventId;
          for (const [index, command] of (commands ?? []).entries()) {
            await options.dispatch({ ...command, commandId: processManagerCommandId(definition.name, event.eventId, index), correlationId });
          }
        }
      },
    });
  }

  start(): Promise<void> {
    return this.subscription.start();
  }

  stop(): Promise<void> {
    return this.subscription.stop();
  }

  waitUntilCaughtUp(options?: { readonly timeoutMs?: number }): Promise<void> {
    return this.subscription.waitUntilCaughtUp(options);
  }

  get status(): ProjectionStatus {
    return this.subscription.status;
  }
}

/** Types a process manager definition against the event and command unions. */
export function defineProcessManager<E extends AnyEvent, C extends AnyCommand>(definition: ProcessManagerDefinition<E, C>): ProcessManagerDefinition<E, C> {
  if (typeof definition?.name !== 'string') throw new InvalidArgumentError('defineProcessManager takes { name, on }.');
  return Object.freeze({ name: definition.name, on: Object.freeze({ ...definition.on }) });
}
