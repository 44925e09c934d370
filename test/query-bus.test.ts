import { describe, expect, it } from 'vitest';
import {
  DuplicateHandlerError,
  HandlerNotFoundError,
  InvalidArgumentError,
  QueryBus,
  type Query,
} from '../src/index.js';

type GetUser = Query<'GetUser', { id: string }>;
type CountUsers = Query<'CountUsers', Record<string, never>>;

function makeBus(users: Map<string, { name: string }>) {
  return new QueryBus()
    .register('GetUser', (q: GetUser) => users.get(q.params.id))
    .register('CountUsers', async (_q: CountUsers) => users.size);
}

describe('QueryBus', () => {
  it('executes the registered handler and returns its result', async () => {
    const users = new Map([['u1', { name: 'ann' }]]);
    const bus = makeBus(users);
    expect(await bus.execute({ type: 'GetUser', params: { id: 'u1' } })).toEqual({ name: 'ann' });
    expect(await bus.execute({ type: 'GetUser', params: { id: 'u2' } })).toBeUndefined();
    users.set('u2', { name: 'bob' });
    const count: number = await bus.execute({ type: 'CountUsers', params: {} });
    expect(count).toBe(2);
  });

  it('an unregistered type rejects with HandlerNotFoundError', async () => {
    const bus = makeBus(new Map());
    const error = await bus.execute({ type: 'Nope', params: {} } as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HandlerNotFoundError);
    expect(error).toMatchObject({ code: 'HANDLER_NOT_FOUND', kind: 'query', type: 'Nope' });
    expect((error as Error).message).toContain("queryBus.register('Nope'");
  });

  it('registering a type twice throws DuplicateHandlerError', async () => {
    const bus = makeBus(new Map([['u1', { name: 'ann' }]]));
    let error: unknown;
    try {
      bus.register('GetUser', () => 'other');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(DuplicateHandlerError);
    expect(error).toMatchObject({ code: 'DUPLICATE_HANDLER', kind: 'query', type: 'GetUser' });
    expect(await bus.execute({ type: 'GetUser', params: { id: 'u1' } })).toEqual({ name: 'ann' });
  });

  it('rejects bad input and passes handler errors through', async () => {
    const bus = new QueryBus().register('Boom', async () => {
      throw new TypeError('read model down');
    });
    await expect(bus.execute(undefined as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(bus.execute({ type: 'Boom', params: null })).rejects.toThrow('read model down');
    expect(() => new QueryBus().register('', () => 1)).toThrow(InvalidArgumentError);
  });
});
