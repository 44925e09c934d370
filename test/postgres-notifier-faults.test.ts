// The after-commit NOTIFY under faults, against the real server: the connection carrying a
// notification is dropped (a TCP proxy that drops connections sending the notify statement), the
// failure is reported to the store's logger and retried, and a listening runner (which would not
// poll for a minute) is woken; when every attempt fails, the runner catches up through its poll.
import { afterAll, describe, expect, it } from 'vitest';
import type { Logger } from '../src/logging.js';
import { PostgresEventStore } from '../src/postgres/postgres-event-store.js';
import { PostgresProjectionRunner } from '../src/postgres/projections.js';
import { postgresAccountsProjection } from './fixtures/projection-postgres-accounts.js';
import { DATABASE_URL, pgTestDatabase } from './support/postgres.js';
import { hostAndPort, startTcpProxy, viaPort } from './support/tcp-proxy.js';

const db = pgTestDatabase({ max: 6 });
const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const close of closers.reverse()) await close().catch(() => undefined);
  await db.cleanup();
});

interface Report {
  readonly level: 'warn' | 'error' | 'info';
  readonly message: string;
  readonly context: Readonly<Record<string, unknown>> | undefined;
}

function recordingLogger(): { logger: Logger; reports: Report[] } {
  const reports: Report[] = [];
  const logger: Logger = {
    debug: () => {},
    info: (message, context) => reports.push({ level: 'info', message, context }),
    warn: (message, context) => reports.push({ level: 'warn', message, context }),
    error: (message, context) => reports.push({ level: 'error', message, context }),
  };
  return { logger, reports };
}

/** A runner on the direct pool (its LISTEN connection untouched by the proxy), caught up on an empty log. */
async function listeningRunner(tag: string, pollIntervalMs: number) {
  const direct = await PostgresEventStore.create({ pool: db.pool, schema: db.schema(tag) });
  closers.push(() => direct.close());
  const runner = new PostgresProjectionRunner(direct, postgresAccountsProjection({ schema: direct.schema }), { pollIntervalMs });
  closers.push(() => runner.stop());
  await runner.start();
  await runner.waitUntilCaughtUp({ timeoutMs: 10_000 });
  // Let the wake-up the waiter caused run out: from here on only a NOTIFY (or a poll) wakes it.
  await new Promise((resolve) => setTimeout(resolve, 300));
  return { direct, runner };
}

async function proxiedStore(schema: string, logger: Logger) {
  const proxy = await startTcpProxy(hostAndPort(DATABASE_URL));
  closers.push(() => proxy.close());
  const store = new PostgresEventStore({ connectionString: viaPort(DATABASE_URL, proxy.port), schema, logger, poolConfig: { max: 2 } });
  closers.push(() => store.close());
  return { proxy, store };
}

describe('after-commit NOTIFY under faults', () => {
  it('reports a dropped notification to the logger, retries it, and the listening runner is woken', async () => {
    const { direct, runner } = await listeningRunner('notifyretry', 60_000);
    const { logger, reports } = recordingLogger();
    const { proxy, store } = await proxiedStore(direct.schema, logger);
    // The statement name travels with every NOTIFY (Parse, then Bind): the next two are dropped.
    proxy.killOn('eventfold_notify', 2);
    const started = Date.now();
    const result = await store.append('account-1', [{ type: 'Deposited', data: { amount: 7, text: 'x' } }], { expectedVersion: 'no-stream' });
    await expect.poll(() => runner.checkpoint?.position ?? 0, { timeout: 10_000, interval: 20 }).toBe(result.position);
    // Woken, not polled: the poll interval is a minute.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(proxy.killed).toBe(2);
    const warnings = reports.filter((r) => r.level === 'warn' && r.message.includes('NOTIFY'));
    expect(warnings).toHaveLength(2);
    expect(warnings.map((w) => w.context?.['attempt'])).toEqual([1, 2]);
    expect(warnings.every((w) => w.context?.['position'] === result.position && typeof w.context['delayMs'] === 'number')).toBe(true);
    expect(reports.some((r) => r.level === 'info' && r.message.includes('delivered after 3 attempts'))).toBe(true);
    expect(reports.some((r) => r.level === 'error')).toBe(false);
  });

  it('gives up after the last attempt with an error report, and the runner still catches up by polling', async () => {
    const { direct, runner } = await listeningRunner('notifygiveup', 400);
    const { logger, reports } = recordingLogger();
    const { proxy, store } = await proxiedStore(direct.schema, logger);
    proxy.killOn('eventfold_notify', 1_000);
    const result = await store.append('account-2', [{ type: 'Deposited', data: { amount: 3, text: 'x' } }], { expectedVersion: 'no-stream' });
    await expect.poll(() => reports.some((r) => r.level === 'error'), { timeout: 15_000 }).toBe(true);
    const error = reports.find((r) => r.level === 'error')!;
    expect(error.message).toMatch(/giving up.*next poll/);
    expect(error.context).toMatchObject({ position: result.position, attempt: 8 });
    expect(reports.filter((r) => r.level === 'warn' && r.message.includes('NOTIFY'))).toHaveLength(7);
    await expect.poll(() => runner.checkpoint?.position ?? 0, { timeout: 5_000 }).toBe(result.position);
    // The store still appends, and a later notification is tried again from scratch.
    proxy.killOn('eventfold_notify', 0);
    const next = await store.append('account-2', [{ type: 'Deposited', data: { amount: 1, text: 'x' } }], { expectedVersion: 1 });
    await expect.poll(() => runner.checkpoint?.position ?? 0, { timeout: 5_000 }).toBe(next.position);
  });

  it('close() does not wait out the retries: one last attempt, then the failure is reported as given up', async () => {
    const { logger, reports } = recordingLogger();
    const schema = db.schema('notifyclose');
    await PostgresEventStore.create({ pool: db.pool, schema }).then((s) => s.close());
    const { proxy, store } = await proxiedStore(schema, logger);
    proxy.killOn('eventfold_notify', 1_000);
    await store.append('account-3', [{ type: 'Deposited', data: { amount: 1, text: 'x' } }], { expectedVersion: 'no-stream' });
    await expect.poll(() => reports.filter((r) => r.level === 'warn').length, { timeout: 5_000 }).toBeGreaterThan(0);
    const started = Date.now();
    await store.close();
    expect(Date.now() - started).toBeLessThan(1_000);
    const errors = reports.filter((r) => r.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/giving up/);
    expect(Number(errors[0]!.context?.['attempt'])).toBeLessThan(8);
  });
});

describe('AfterCommitNotifier coalescing', () => {
  it('a position committed in any microtask around the end of a NOTIFY is notified too', async () => {
    const { AfterCommitNotifier } = await import('../src/postgres/notifier.js');
    const channel = `eventfold_race_${process.pid}`;
    for (let depth = 0; depth < 12; depth++) {
      const notified: number[] = [];
      let notifier: InstanceType<typeof AfterCommitNotifier>;
      let queries = 0;
      // The real pool; after the first NOTIFY answers, another commit arrives `depth` microtasks later.
      const pool = {
        query: async (config: { values: string[] }) => {
          const result = await db.pool.query(config as never);
          notified.push(Number(config.values[1]));
          if (++queries === 1) {
            let hops = depth;
            const hop = (): void => {
              if (hops-- > 0) queueMicrotask(hop);
              else notifier.committed(2);
            };
            queueMicrotask(hop);
          }
          return result;
        },
      };
      notifier = new AfterCommitNotifier(pool as never, channel, { debug() {}, info() {}, warn() {}, error() {} });
      notifier.committed(1);
      await expect.poll(() => notified.at(-1), { timeout: 2_000, interval: 5 }).toBe(2);
      await notifier.close();
    }
  });
});
