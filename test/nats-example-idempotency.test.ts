import { afterAll, describe, expect, it } from 'vitest';
import type { EventStore } from '../src/index.js';
import { NatsKeyStore, NatsUniqueValues, type NatsEventStore } from '../src/nats/index.js';
import type { PasswordHash } from '../examples/user-details/domain/password.js';
import { commandMiddleware, evolveStore } from '../examples/user-details/evolution.js';
import { createNatsWriteSide, USER_NAME_SCOPE } from '../examples/user-details/nats/commands.js';
import { natsStores } from './support/nats.js';

/**
 * The example's NATS write side with idempotent commands, two "processes" (each its own layers
 * and its own idempotency, so no in-process sharing) over one JetStream stream, one key bucket and
 * one user-name bucket. Appends to user streams are held back so that the races happen for sure.
 */
const stores = natsStores('exidem');
const opened: NatsEventStore[] = [];
afterAll(async () => {
  for (const store of opened) await store.close();
  await stores.cleanup();
});

const fastHash = async (password: string): Promise<PasswordHash> => ({
  algorithm: 'scrypt',
  salt: 'c2FsdA==',
  hash: Buffer.from(password).toString('base64'),
  N: 16384,
  r: 8,
  p: 1,
  keyLength: 32,
});

/** The store, with appends to `user-…` streams delayed: a claim and its events come apart in time. */
function slowUserAppends(store: EventStore, delayMs: number): EventStore {
  const pause = () => new Promise((resolve) => setTimeout(resolve, delayMs));
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'appendMany') {
        return async (appends: readonly { streamId: string }[]) => {
          if (appends.some((a) => a.streamId.startsWith('user-'))) await pause();
          return target.appendMany(appends as never);
        };
      }
      if (property === 'append') {
        return async (streamId: string, ...rest: unknown[]) => {
          if (streamId.startsWith('user-')) await pause();
          return (target.append as (...args: unknown[]) => unknown)(streamId, ...rest);
        };
      }
      const value = Reflect.get(target, property, receiver) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

async function setup() {
  const raw = await stores.create();
  opened.push(raw);
  const keys = await NatsKeyStore.create({ connection: raw.connection, bucket: stores.bucket('keys') });
  const names = new NatsUniqueValues({ connection: raw.connection, bucket: stores.bucket('names') });
  await names.migrate();
  const process = () => {
    const evolved = evolveStore(slowUserAppends(raw, 300), keys);
    const write = createNatsWriteSide({ store: evolved.store, names, hash: fastHash, forget: evolved.forget });
    for (const middleware of commandMiddleware(evolved)) write.commandBus.use(middleware);
    return { evolved, write };
  };
  return { raw, keys, names, a: process(), b: process() };
}

const zed = { userId: 'u-zed', userName: 'zed', email: 'zed.secret@example.com', password: 'zed-password-1' };

describe('the NATS write side with idempotent commands', () => {
  it('twins in two processes: one claim wins, both answer the same, the name stays with the user', async () => {
    const { raw, names, a, b } = await setup();
    const command = { type: 'RegisterUser' as const, commandId: 'register-zed', data: zed };
    const [first, second] = await Promise.all([a.write.commandBus.dispatch(command), b.write.commandBus.dispatch(command)]);
    expect(second).toEqual(first);
    expect(first).toEqual({ userId: 'u-zed', version: 1 });
    expect((await raw.readStream('user-u-zed').toArray()).map((e) => e.type)).toEqual(['UserRegistered']);
    // The loser of the claim did not free the name it shares with the winner.
    expect(await names.ownerOf(USER_NAME_SCOPE, 'zed')).toBe('u-zed');
    await expect(a.write.commandBus.dispatch({ type: 'RegisterUser', data: { ...zed, userId: 'u-zed2' } })).rejects.toMatchObject({
      code: 'USER_NAME_TAKEN',
    });
    // The email is stored encrypted; through the layers it reads back.
    expect(JSON.stringify(await raw.readStream('user-u-zed').toArray())).not.toContain('zed.secret');
    expect((await a.write.users.load('u-zed')).email).toBe(zed.email);
  });

  it('two commands registering one user id at once: one registers, the other is refused, the name stays held', async () => {
    const { names, a, b } = await setup();
    const outcomes = await Promise.allSettled([
      a.write.commandBus.dispatch({ type: 'RegisterUser', commandId: 'one', data: zed }),
      b.write.commandBus.dispatch({ type: 'RegisterUser', commandId: 'two', data: zed }),
    ]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const refused = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toMatchObject({ code: 'USER_ALREADY_REGISTERED' });
    expect(await names.ownerOf(USER_NAME_SCOPE, 'zed')).toBe('u-zed');
    // Either may win the race. The refused command's claim was abandoned: its id can be used
    // again (and is refused again, by the domain).
    const loser = outcomes[0]!.status === 'rejected' ? 'one' : 'two';
    await expect(b.write.commandBus.dispatch({ type: 'RegisterUser', commandId: loser, data: zed })).rejects.toMatchObject({
      code: 'USER_ALREADY_REGISTERED',
    });
  });

  it('forget-me through the bus: one UserForgotten, the key forgotten, the name free, the history redacted', async () => {
    const { raw, keys, names, a, b } = await setup();
    await a.write.commandBus.dispatch({ type: 'RegisterUser', data: zed });
    const forget = { type: 'ForgetUser' as const, commandId: 'forget-zed', data: { userId: 'u-zed' } };
    const [first, second] = await Promise.all([a.write.commandBus.dispatch(forget), b.write.commandBus.dispatch(forget)]);
    expect(second).toEqual(first);
    expect(first).toEqual({ userId: 'u-zed', version: 2 });
    expect((await keys.lookup(['u-zed'])).get('u-zed')?.status).toBe('forgotten');
    expect(await names.ownerOf(USER_NAME_SCOPE, 'zed')).toBeUndefined();
    const history = await a.evolved.store.readStream('user-u-zed').toArray();
    expect(history.map((e) => [e.type, (e.data as { email?: string }).email])).toEqual([
      ['UserRegistered', '[forgotten]'],
      ['UserForgotten', undefined],
    ]);
    const user = await b.write.users.load('u-zed');
    expect([user.email, user.status, user.version]).toEqual(['[forgotten]', 'deactivated', 2]);
    // Forgetting again (without an id) changes nothing and still succeeds.
    expect(await b.write.commandBus.dispatch({ type: 'ForgetUser', data: { userId: 'u-zed' } })).toEqual({ userId: 'u-zed', version: 2 });
    expect((await raw.readStream('user-u-zed').toArray()).length).toBe(2);
  });
});
