import { type } from 'arktype';
import * as v from 'valibot';
import { z } from 'zod';
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  CommandBus,
  defineSchemas,
  EventSchemaError,
  InvalidCommandError,
  InvalidEventError,
  isEventfoldError,
  validateCommands,
  validated,
  ValidatingEventStore,
  type CommandsFromSchemas,
  type EventsFromSchemas,
} from '../src/index.js';
import { evolutionStoreKinds } from './fixtures/evolution-stores.js';
import { failure } from './support/failure.js';

const kinds = evolutionStoreKinds();

const zodEvents = defineSchemas({
  UserRegistered: z.object({ userId: z.string().min(1), email: z.email(), age: z.number().int().min(0).optional() }),
  EmailChanged: z.object({ userId: z.string(), email: z.email() }),
});
const valibotEvents = defineSchemas({
  UserRegistered: v.object({ userId: v.pipe(v.string(), v.minLength(1)), email: v.pipe(v.string(), v.email()), age: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))) }),
  EmailChanged: v.object({ userId: v.string(), email: v.pipe(v.string(), v.email()) }),
});

// arktype keeps undeclared keys unless told to delete them.
const arktypeEvents = defineSchemas({
  UserRegistered: type({ userId: 'string >= 1', email: 'string.email', 'age?': 'number.integer >= 0', '+': 'delete' }),
  EmailChanged: type({ userId: 'string', email: 'string.email', '+': 'delete' }),
});

describe('schema types', () => {
  it('infers the event and command unions from the schemas', () => {
    type ZodEvents = EventsFromSchemas<typeof zodEvents>;
    type ValibotEvents = EventsFromSchemas<typeof valibotEvents>;
    type ArktypeEvents = EventsFromSchemas<typeof arktypeEvents>;
    expectTypeOf<Extract<ZodEvents, { type: 'EmailChanged' }>['data']>().toEqualTypeOf<{ userId: string; email: string }>();
    expectTypeOf<Extract<ValibotEvents, { type: 'EmailChanged' }>['data']>().toEqualTypeOf<{ userId: string; email: string }>();
    expectTypeOf<Extract<ArktypeEvents, { type: 'EmailChanged' }>['data']>().toEqualTypeOf<{ userId: string; email: string }>();
    expectTypeOf<ArktypeEvents['type']>().toEqualTypeOf<'UserRegistered' | 'EmailChanged'>();
    expectTypeOf<ZodEvents['type']>().toEqualTypeOf<'UserRegistered' | 'EmailChanged'>();
    type Commands = CommandsFromSchemas<{ Register: typeof zodEvents.EmailChanged }>;
    expectTypeOf<Commands['data']>().toEqualTypeOf<{ userId: string; email: string }>();
  });

  it('refuses something that is not a Standard Schema', () => {
    expect(() => defineSchemas({ A: { parse: () => 1 } as never })).toThrow(/not a Standard Schema/);
  });
});

describe.each([
  ['zod', zodEvents],
  ['valibot', valibotEvents],
  ['arktype', arktypeEvents],
] as const)('validation with %s', (_library, schemas) => {
  describe.each(kinds)('on the $name store', (kind) => {
    it('stores valid events and refuses invalid ones before anything is written, with issues by path', async () => {
      const inner = await (await kind.fresh()).open();
      const store = new ValidatingEventStore(inner, schemas);
      await store.append('user-1', [{ type: 'UserRegistered', data: { userId: 'u1', email: 'a@example.com' } }], { expectedVersion: 'no-stream' });
      const error = await failure<unknown>(() =>
        store.appendMany([
          { streamId: 'user-2', expectedVersion: 'no-stream', events: [{ type: 'UserRegistered', data: { userId: 'u2', email: 'b@example.com' } }] },
          { streamId: 'user-1', expectedVersion: 1, events: [{ type: 'EmailChanged', data: { userId: 'u1', email: 'not-an-email' } }] },
        ]),
      );
      expect(error).toBeInstanceOf(InvalidEventError);
      expect(error).toBeInstanceOf(EventSchemaError);
      expect(isEventfoldError(error, 'INVALID_EVENT')).toBe(true);
      expect((error as EventSchemaError).issues.map((i) => i.path)).toEqual(['email']);
      expect((error as EventSchemaError).details).toMatchObject({ streamId: 'user-1', index: 0, path: 'email' });
      expect(await inner.streamVersion('user-2')).toBe(0);
      expect(await inner.streamVersion('user-1')).toBe(1);

      const several = (await failure<unknown>(() =>
        store.append('user-3', [{ type: 'UserRegistered', data: { userId: '', email: 'x', age: -1 } }], { expectedVersion: 'any' }),
      )) as EventSchemaError;
      expect(several.issues.map((i) => i.path).sort()).toEqual(['age', 'email', 'userId']);
      expect(several.message).toMatch(/userId/);
      const unknown = (await failure<unknown>(() => store.append('user-3', [{ type: 'Typo', data: {} }], { expectedVersion: 'any' }))) as EventSchemaError;
      expect(unknown.issues[0]!.message).toMatch(/no schema/);
      // One event in the whole log: the first append's.
      const log = await inner.readAll().toArray();
      expect(log.map((e) => e.streamId)).toEqual(['user-1']);
      expect(await inner.headPosition()).toBe(log[0]!.position);
    });

    it('stores the schema output: keys the schema strips never reach the log', async () => {
      const inner = await (await kind.fresh()).open();
      const store = new ValidatingEventStore(inner, schemas);
      await store.append('user-1', [{ type: 'EmailChanged', data: { userId: 'u1', email: 'a@example.com', injected: '<script>' } }], {
        expectedVersion: 'no-stream',
      });
      expect((await inner.readStream('user-1').toArray())[0]!.data).toEqual({ userId: 'u1', email: 'a@example.com' });
    });
  });

  it('validates commands before their handler runs', async () => {
    const commands = defineSchemas({ ChangeEmail: schemas.EmailChanged });
    let handled = 0;
    const bus = new CommandBus()
      .use(validateCommands(commands))
      .register('ChangeEmail', async (command: CommandsFromSchemas<typeof commands>) => {
        handled++;
        return command.data.email;
      });
    expect(await bus.dispatch({ type: 'ChangeEmail', data: { userId: 'u', email: 'a@example.com' } })).toBe('a@example.com');
    const error = await failure<unknown>(() => bus.dispatch({ type: 'ChangeEmail', data: { userId: 'u', email: 'nope' } }));
    expect(error).toBeInstanceOf(InvalidCommandError);
    expect((error as InvalidCommandError).code).toBe('INVALID_COMMAND');
    expect((error as InvalidCommandError).issues).toEqual([expect.objectContaining({ path: 'email' })]);
    expect(handled).toBe(1);
  });

  it('hands the schema output to a validated handler', async () => {
    const bus = new CommandBus().register(
      'ChangeEmail',
      validated(schemas.EmailChanged, async (command: { type: 'ChangeEmail'; data: { userId: string; email: string } }) => command.data),
    );
    expect(await bus.dispatch({ type: 'ChangeEmail', data: { userId: 'u', email: 'a@example.com', extra: 1 } as never })).toEqual({
      userId: 'u',
      email: 'a@example.com',
    });
    await expect(bus.dispatch({ type: 'ChangeEmail', data: { userId: 'u', email: 'x' } })).rejects.toBeInstanceOf(InvalidCommandError);
  });
});
