import { describe, expect, it } from 'vitest';
import { InMemoryCheckpointStore } from '../src/index.js';
import { SqliteCheckpointStore } from '../src/sqlite/index.js';
import { createUserDetailsApp } from '../examples/user-details/app.js';
import { openSqlite } from '../examples/user-details/infrastructure.js';
import { startWelcomeMails } from '../examples/user-details/welcome.js';
import type { SqliteEventStore } from '../src/sqlite/index.js';

describe('user-details: the welcome-mails process manager', () => {
  it('mails every registered user once, and a redelivery of every event (a lost checkpoint) mails nobody twice', async () => {
    const infrastructure = openSqlite(':memory:');
    const app = await createUserDetailsApp(infrastructure, { projection: 'inline' });
    try {
      for (const name of ['ann', 'ben', 'cat']) {
        await app.commands.dispatch({ type: 'RegisterUser', data: { userId: `u-${name}`, userName: name, email: `${name}@example.com`, password: `${name}-password-1` } });
      }
      const mails: string[] = [];
      const store = infrastructure.store as SqliteEventStore;
      const first = await startWelcomeMails({ store, checkpoints: new SqliteCheckpointStore(store.database), deliver: (m) => void mails.push(m.email) });
      await first.waitUntilCaughtUp({ timeoutMs: 20_000 });
      await first.stop();
      expect(mails.sort()).toEqual(['ann@example.com', 'ben@example.com', 'cat@example.com']);

      // A manager that lost its checkpoint sees every UserRegistered again: same command ids, nothing new.
      const again = await startWelcomeMails({ store, checkpoints: new InMemoryCheckpointStore(), deliver: (m) => void mails.push(m.email) });
      await again.waitUntilCaughtUp({ timeoutMs: 20_000 });
      await again.stop();
      expect(mails).toHaveLength(3);
      const sent = await store.readAll({ filter: { types: ['WelcomeSent'] } }).toArray();
      expect(sent.map((e) => e.streamId).sort()).toEqual(['welcome-u-ann', 'welcome-u-ben', 'welcome-u-cat']);
    } finally {
      await app.close?.();
      await infrastructure.close();
    }
  });
});
