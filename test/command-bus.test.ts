import { describe, expect, it } from 'vitest';
import {
  CommandBus,
  DuplicateHandlerError,
  HandlerNotFoundError,
  InvalidArgumentError,
  isEventfoldError,
  type AnyCommand,
  type Command,
  type CommandContext,
} from '../src/index.js';

type Add = Command<'Add', { a: number; b: number }>;
type Greet = Command<'Greet', { name: string }>;

function makeBus() {
  return new CommandBus()
    .register('Add', (c: Add) => c.data.a + c.data.b)
    .register('Greet', async (c: Greet, ctx: CommandContext) => ({ text: `hi ${c.data.name}`, ctx }));
}

describe('CommandBus', () => {
  it('dispatches to the registered handler and returns its (awaited) result', async () => {
    const bus = makeBus();
    const sum: number = await bus.dispatch({ type: 'Add', data: { a: 2, b: 3 } });
    expect(sum).toBe(5);
    const greeting = await bus.dispatch({ type: 'Greet', data: { name: 'ann' }, commandId: 'c1' });
    expect(greeting.text).toBe('hi ann');
    expect(greeting.ctx).toEqual({
      commandId: 'c1',
      correlationId: 'c1',
      metadata: { correlationId: 'c1', causationId: 'c1' },
    });
    expect(bus.has('Add')).toBe(true);
    expect(bus.has('Nope')).toBe(false);
  });

  it('keeps a given correlationId and makes up a UUID commandId when none is given', async () => {
    const bus = makeBus();
    const { ctx } = await bus.dispatch({ type: 'Greet', data: { name: 'x' }, correlationId: 'flow' });
    expect(ctx.commandId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(ctx.correlationId).toBe('flow');
    expect(ctx.metadata).toEqual({ correlationId: 'flow', causationId: ctx.commandId });
  });

  it('an unregistered type rejects with HandlerNotFoundError', async () => {
    const bus = makeBus();
    const error = await bus.dispatch({ type: 'Nope', data: {} } as never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HandlerNotFoundError);
    expect(isEventfoldError(error, 'HANDLER_NOT_FOUND')).toBe(true);
    expect(error).toMatchObject({ kind: 'command', type: 'Nope' });
    expect((error as Error).message).toContain("'Nope'");
  });

  it('registering a type twice throws DuplicateHandlerError and keeps the first handler', async () => {
    const bus = makeBus();
    expect(() => bus.register('Add', () => -1)).toThrow(DuplicateHandlerError);
    try {
      bus.register('Add', () => -1);
    } catch (e) {
      expect(e).toMatchObject({ code: 'DUPLICATE_HANDLER', kind: 'command', type: 'Add' });
    }
    expect(await bus.dispatch({ type: 'Add', data: { a: 1, b: 1 } })).toBe(2);
  });

  it('rejects a non-command and an empty type', async () => {
    const bus = makeBus();
    await expect(bus.dispatch(null as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(bus.dispatch({ data: 1 } as never)).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(() => new CommandBus().register('', () => 1)).toThrow(InvalidArgumentError);
  });

  it('handler errors reach the caller', async () => {
    const bus = new CommandBus().register('Fail', () => {
      throw new RangeError('nope');
    });
    await expect(bus.dispatch({ type: 'Fail', data: null })).rejects.toThrow(RangeError);
  });

  it('runs middleware in order, the first added outermost, around the handler', async () => {
    const trail: string[] = [];
    const seen: AnyCommand[] = [];
    const bus = new CommandBus().register('Add', (c: Add) => {
      trail.push('handler');
      return c.data.a + c.data.b;
    });
    bus
      .use(async (command, ctx, next) => {
        trail.push(`outer:before:${ctx.commandId}`);
        seen.push(command);
        const result = await next();
        trail.push(`outer:after:${String(result)}`);
        return (result as number) * 10;
      })
      .use(async (_command, _ctx, next) => {
        trail.push('inner:before');
        const result = await next();
        trail.push('inner:after');
        return (result as number) + 1;
      });
    const result = await bus.dispatch({ type: 'Add', data: { a: 1, b: 2 }, commandId: 'k' });
    expect(result).toBe(40);
    expect(trail).toEqual(['outer:before:k', 'inner:before', 'handler', 'inner:after', 'outer:after:4']);
    expect(seen).toEqual([{ type: 'Add', data: { a: 1, b: 2 }, commandId: 'k' }]);
  });

  it('middleware can short-circuit (the handler never runs) and can catch handler errors', async () => {
    let handled = 0;
    const bus = new CommandBus()
      .register('Add', (c: Add) => {
        handled++;
        if (c.data.a < 0) throw new Error('negative');
        return c.data.a + c.data.b;
      })
      .use(async (command, _ctx, next) => {
        if ((command.data as { a: number }).a === 0) return 'denied';
        try {
          return await next();
        } catch (error) {
          return `caught ${(error as Error).message}`;
        }
      });
    expect(await bus.dispatch({ type: 'Add', data: { a: 0, b: 1 } })).toBe('denied');
    expect(handled).toBe(0);
    expect(await bus.dispatch({ type: 'Add', data: { a: -1, b: 1 } })).toBe('caught negative');
    expect(handled).toBe(1);
  });

  it('middleware still rejects unregistered types before running', async () => {
    let ran = false;
    const bus = makeBus().use(async (_c, _x, next) => {
      ran = true;
      return next();
    });
    await expect(bus.dispatch({ type: 'Missing', data: 1 } as never)).rejects.toBeInstanceOf(HandlerNotFoundError);
    expect(ran).toBe(false);
  });
});
