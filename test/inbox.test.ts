import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { InMemoryInbox, InvalidArgumentError, type Inbox } from '../src/index.js';
import { PostgresInbox } from '../src/postgres/index.js';
import { SqliteInbox } from '../src/sqlite/index.js';
import { pgTestDatabase } from './support/postgres.js';

const db = pgTestDatabase({ max: 12 });
afterAll(() => db.cleanup());

/**
 * One consumer effect per inbox: add a message's amount to a balance, in the inbox transaction.
 * `total()` reads the effect back from where the inbox's transaction put it.
 */
interface Harness {
  readonly inbox: Inbox<never>;
  readonly apply: (inbox: Inbox<never>, messageId: string, amount: number) => Promise<string>;
  readonly total: () => Promise<number>;
  readonly failNext: () => void;
}

const harnesses: Record<string, () => Promise<Harness>> = {
  memory: async () => {
    const inbox = new InMemoryInbox();
    let balance = 0;
    let fail = false;
    return {
      inbox: inbox as unknown as Inbox<never>,
      apply: (i, id, amount) =>
        (i as unknown as InMemoryInbox).handle('ledger', id, () => {
          if (fail) {
            fail = false;
            throw new Error('effect failed');
          }
          balance += amount;
        }),
      total: async () => balance,
      failNext: () => (fail = true),
    };
  },
  sqlite: async () => {
    const inbox = new SqliteInbox({ path: ':memory:' });
    inbox.database.exec('CREATE TABLE balance (id INTEGER PRIMARY KEY, total INTEGER NOT NULL); INSERT INTO balance VALUES (1, 0)');
    let fail = false;
    return {
      inbox: inbox as unknown as Inbox<never>,
      apply: (i, id, amount) =>
        (i as unknown as SqliteInbox).handle('ledger', id, (d) => {
          d.prepare('UPDATE balance SET total = total + ? WHERE id = 1').run(amount);
          if (fail) {
            fail = false;
            throw new Error('effect failed');
          }
        }),
      total: async () => (inbox.database.prepare('SELECT total FROM balance').get() as { total: number }).total,
      failNext: () => (fail = true),
    };
  },
  postgres: async () => {
    const schema = db.schema('inbox');
    const inbox = new PostgresInbox({ pool: db.pool, schema });
    await inbox.migrate();
    await db.pool.query(`CREATE TABLE "${schema}".balance (id int PRIMARY KEY, total int NOT NULL); INSERT INTO "${schema}".balance VALUES (1, 0)`);
    let fail = false;
    return {
      inbox: inbox as unknown as Inbox<never>,
      apply: (i, id, amount) =>
        (i as unknown as PostgresInbox).handle('ledger', id, async (client) => {
          await client.query(`UPDATE "${schema}".balance SET total = total + $1 WHERE id = 1`, [amount]);
          if (fail) {
            fail = false;
            throw new Error('effect failed');
          }
        }),
      total: async () => (await db.pool.query(`SELECT total FROM "${schema}".balance`)).rows[0].total as number,
      failNext: () => (fail = true),
    };
  },
};

describe.each(Object.keys(harnesses))('Inbox (%s)', (name) => {
  it('any at-least-once delivery, duplicated and concurrent, has the effect of exactly-once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 100 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 16 }),
        async (amounts, duplicates) => {
          const h = await harnesses[name]!();
          const deliveries = amounts.map((amount, i) => ({ id: `m-${i}`, amount }));
          for (const d of duplicates) deliveries.push(deliveries[d % amounts.length]!);
          const outcomes = await Promise.all(deliveries.map((d) => h.apply(h.inbox, d.id, d.amount)));
          expect(outcomes.filter((o) => o === 'processed')).toHaveLength(amounts.length);
          expect(await h.total()).toBe(amounts.reduce((a, b) => a + b, 0));
        },
      ),
      { numRuns: name === 'postgres' ? 10 : 40 },
    );
  });

  it('a failing effect records nothing: the redelivery runs it again', async () => {
    const h = await harnesses[name]!();
    h.failNext();
    await expect(h.apply(h.inbox, 'm-1', 5)).rejects.toThrow('effect failed');
    expect(await h.total()).toBe(0);
    expect(await h.apply(h.inbox, 'm-1', 5)).toBe('processed');
    expect(await h.apply(h.inbox, 'm-1', 5)).toBe('duplicate');
    expect(await h.total()).toBe(5);
  });

  it('rejects consumer names and message ids that are not plain keys', async () => {
    const h = await harnesses[name]!();
    for (const bad of ['', 'a b', 'x'.repeat(201), 'id\n2']) {
      await expect((h.inbox as unknown as InMemoryInbox).handle(bad, 'm', () => undefined)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect((h.inbox as unknown as InMemoryInbox).handle('c', bad, () => undefined)).rejects.toBeInstanceOf(InvalidArgumentError);
    }
  });
});

describe('SqliteInbox', () => {
  it('refuses asynchronous work and rolls the record back', async () => {
    const inbox = new SqliteInbox({ path: ':memory:' });
    await expect(inbox.handle('c', 'm-1', async () => undefined)).rejects.toBeInstanceOf(InvalidArgumentError);
    expect(inbox.has('c', 'm-1')).toBe(false);
    expect(inbox.prune(new Date(Date.now() + 1000))).toBe(0);
    inbox.close();
  });
});
