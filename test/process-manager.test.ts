import { afterAll, describe, expect, it } from 'vitest';
import {
  CommandBus,
  defineProcessManager,
  InMemoryCheckpointStore,
  InMemoryEventStore,
  InvalidArgumentError,
  ProcessManager,
  processManagerCommandId,
  type Command,
  type Event,
} from '../src/index.js';
import { SqliteEventStore } from '../src/sqlite/index.js';
import { sqliteTempDir } from './fixtures/sqlite-temp.js';
import { spawnFixture, until } from './support/child.js';

const temp = sqliteTempDir('eventfold-pm-');
afterAll(() => temp.cleanup());

type Opened = Event<'Opened', { owner: string }>;
type Closed = Event<'Closed', { reason: string }>;
type Notify = Command<'Notify', { owner: string }>;

describe('ProcessManager', () => {
  it('sends the commands its reactions decide, with deterministic ids, the correlation id and only for the types it reacts to', async () => {
    const store = new InMemoryEventStore();
    await store.append('account-1', [{ type: 'Opened', data: { owner: 'ada' }, metadata: { correlationId: 'req-1' } }], { expectedVersion: 'no-stream' });
    await store.append('account-1', [{ type: 'Closed', data: { reason: 'x' } }], { expectedVersion: 1 });
    const sent: { commandId: string; correlationId: string; owner: string }[] = [];
    const bus = new CommandBus().register('Notify', async (c: Notify, ctx) => void sent.push({ commandId: ctx.commandId, correlationId: ctx.correlationId, owner: c.data.owner }));
    const manager = new ProcessManager({
      processManager: defineProcessManager<Opened | Closed, Notify>({
        name: 'welcome',
        on: { Opened: (event) => [{ type: 'Notify', data: { owner: event.data.owner } }] },
      }),
      store,
      checkpoints: new InMemoryCheckpointStore(),
      dispatch: (command) => bus.dispatch(command),
    });
    await manager.start();
    await manager.waitUntilCaughtUp({ timeoutMs: 10_000 });
    const opened = (await store.readStream('account-1').toArray())[0]!;
    expect(sent).toEqual([{ commandId: processManagerCommandId('welcome', opened.eventId, 0), correlationId: 'req-1', owner: 'ada' }]);
    await manager.stop();
  });

  it('refuses a definition without reactions', () => {
    expect(
      () =>
        new ProcessManager({
          processManager: defineProcessManager<Opened, Notify>({ name: 'empty', on: {} }),
          store: new InMemoryEventStore(),
          checkpoints: new InMemoryCheckpointStore(),
          dispatch: async () => undefined,
        }),
    ).toThrow(InvalidArgumentError);
  });

  it('killed between a command and its checkpoint, then restarted: the command is sent again with the same id and the effect happens once', async () => {
    const file = temp.file('pm.sqlite');
    const store = new SqliteEventStore({ path: file });
    const total = 12;
    for (let i = 1; i <= total; i++) await store.append(`account-${i}`, [{ type: 'Opened', data: { owner: `o${i}` } }], { expectedVersion: 'no-stream' });
    await store.close();

    const first = spawnFixture('process-manager-child.ts', [file]);
    await until(() => first.lines.filter((l) => l.startsWith('dispatched ')).length >= 5, 60_000, 'five commands');
    first.process.kill('SIGKILL');
    await first.exited;
    const second = spawnFixture('process-manager-child.ts', [file]);
    await second.waitForLine('caught-up', 120_000);
    second.process.kill('SIGTERM');
    await second.exited;

    const dispatched = [...first.lines, ...second.lines].filter((l) => l.startsWith('dispatched ')).map((l) => l.slice('dispatched '.length));
    expect(dispatched.length).toBeGreaterThan(total); // the crash landed between a command and its checkpoint
    expect(new Set(dispatched).size).toBe(total);
    const check = new SqliteEventStore({ path: file });
    const bonuses = (await check.readAll({ filter: { types: ['BonusGranted'] } }).toArray()).map((e) => e.streamId);
    expect(bonuses.sort()).toEqual(Array.from({ length: total }, (_, i) => `account-${i + 1}`).sort());
    await check.close();
  }, 240_000);
});
