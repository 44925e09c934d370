import type { AnyCommand, Command, CommandMiddleware } from '../commands/command-bus.js';
import { InvalidArgumentError } from '../errors.js';
import type { AnyEvent, Event } from '../events/types.js';
import type { EventStore } from '../store/event-store.js';
import { EventStoreDecorator } from '../store/decorator.js';
import { EventSchemaError, InvalidCommandError, type ValidationIssue } from './errors.js';
import type { StandardSchemaV1 } from './standard-schema.js';

/** Schemas keyed by event or command type; any Standard Schema validator (zod, valibot, arktype, …). */
export type SchemaMap = { readonly [type: string]: StandardSchemaV1 };

/** The event union described by a schema map: `{ UserRegistered: z.object(…) }` → `Event<'UserRegistered', …>`. */
export type EventsFromSchemas<S extends SchemaMap> = {
  [K in keyof S & string]: Event<K, StandardSchemaV1.InferOutput<S[K]>>;
}[keyof S & string];

/** The command union described by a schema map, as `Command<type, data>` members. */
export type CommandsFromSchemas<S extends SchemaMap> = {
  [K in keyof S & string]: Command<K, StandardSchemaV1.InferOutput<S[K]>>;
}[keyof S & string];

/** Checks that every entry is a Standard Schema; returns the map unchanged, typed. */
export function defineSchemas<S extends SchemaMap>(schemas: S): S {
  if (typeof schemas !== 'object' || schemas === null) throw new InvalidArgumentError('defineSchemas takes an object keyed by type.');
  for (const [type, schema] of Object.entries(schemas)) {
    const standard = (schema as Partial<StandardSchemaV1> | null)?.['~standard'];
    if (typeof standard !== 'object' || standard === null || standard.version !== 1 || typeof standard.validate !== 'function') {
      throw new InvalidArgumentError(
        `The schema for '${type}' is not a Standard Schema (v1): use zod >= 3.24, valibot >= 1.0, arktype >= 2.0 or another conforming library.`,
      );
    }
  }
  return schemas;
}

function pathOf(path: StandardSchemaV1.Issue['path']): string {
  if (path === undefined) return '';
  return path.map((segment) => String(typeof segment === 'object' && segment !== null ? segment.key : segment)).join('.');
}

/** Runs a Standard Schema: the (possibly transformed) value, or the issues by path. */
export async function validateWithSchema(
  schema: StandardSchemaV1,
  value: unknown,
): Promise<{ readonly value: unknown; readonly issues?: undefined } | { readonly issues: readonly ValidationIssue[] }> {
  let result = schema['~standard'].validate(value);
  if (result instanceof Promise) result = await result;
  if (result.issues !== undefined) {
    return { issues: result.issues.map((issue) => ({ path: pathOf(issue.path), message: issue.message })) };
  }
  return { value: result.value };
}

export interface ValidatingEventStoreOptions {
  /** An event type without a schema: `'reject'` (default; a typo cannot slip in) or `'allow'`. */
  readonly unknownTypes?: 'reject' | 'allow';
}

/**
 * Validates every appended event's data with the schema of its type, before anything is stored;
 * an invalid event fails the whole append (and `appendMany`) with `EventSchemaError`, an
 * `InvalidEventError` listing the issues by path. The schema's output is what is stored, so
 * defaults and transformations apply and keys the schema strips never reach the log.
 * Reads are not validated: stored history is what it is (upcast it instead).
 */
export class ValidatingEventStore<S extends SchemaMap> extends EventStoreDecorator {
  private readonly unknownTypes: 'reject' | 'allow';

  constructor(
    inner: EventStore,
    readonly schemas: S,
    options: ValidatingEventStoreOptions = {},
  ) {
    super(inner);
    defineSchemas(schemas);
    this.unknownTypes = options.unknownTypes ?? 'reject';
  }

  protected override async encode(streamId: string, events: readonly AnyEvent[]): Promise<readonly AnyEvent[]> {
    const out: AnyEvent[] = [];
    for (let index = 0; index < events.length; index++) {
      const event = events[index]!;
      const type = typeof event?.type === 'string' ? event.type : String(event?.type);
      const schema = Object.hasOwn(this.schemas, type) ? this.schemas[type] : undefined;
      if (schema === undefined) {
        // '$'-types are eventfold's own records (tombstones, command reservations).
        if (this.unknownTypes === 'allow' || type.startsWith('$')) {
          out.push(event);
          continue;
        }
        throw new EventSchemaError(type, [{ path: '', message: 'no schema is registered for this event type' }], { streamId, index });
      }
      const checked = await validateWithSchema(schema, event.data);
      if (checked.issues !== undefined) throw new EventSchemaError(type, checked.issues, { streamId, index });
      out.push(checked.value === event.data ? event : { ...event, data: checked.value });
    }
    return out;
  }
}

/**
 * Command bus middleware: validates `command.data` with the schema of its type before the handler
 * runs; an invalid command rejects with `InvalidCommandError` (issues by path) and nothing runs.
 * Commands of types without a schema pass, unless `unknownTypes` is `'reject'`.
 */
export function validateCommands<S extends SchemaMap>(
  schemas: S,
  options: { readonly unknownTypes?: 'reject' | 'allow' } = {},
): CommandMiddleware {
  defineSchemas(schemas);
  const unknownTypes = options.unknownTypes ?? 'allow';
  return async (command: AnyCommand, _context, next) => {
    const schema = Object.hasOwn(schemas, command.type) ? schemas[command.type] : undefined;
    if (schema === undefined) {
      if (unknownTypes === 'reject') throw new InvalidCommandError(command.type, [{ path: '', message: 'no schema is registered for this command type' }]);
      return next();
    }
    const checked = await validateWithSchema(schema, command.data);
    if (checked.issues !== undefined) throw new InvalidCommandError(command.type, checked.issues);
    return next();
  };
}

/**
 * Wraps a handler so it receives the command with its data as the schema's output (defaults and
 * transformations applied), and its type inferred from the schema:
 * `bus.register('RegisterUser', validated(RegisterUserSchema, async (command) => …))`.
 */
export function validated<Schema extends StandardSchemaV1, T extends string, R, Ctx>(
  schema: Schema,
  handler: (command: Command<T, StandardSchemaV1.InferOutput<Schema>>, context: Ctx) => R | Promise<R>,
): (command: Command<T, StandardSchemaV1.InferInput<Schema>>, context: Ctx) => Promise<R> {
  return async (command, context) => {
    const checked = await validateWithSchema(schema, command.data);
    if (checked.issues !== undefined) throw new InvalidCommandError(command.type, checked.issues);
    return handler({ ...command, data: checked.value as StandardSchemaV1.InferOutput<Schema> }, context);
  };
}
