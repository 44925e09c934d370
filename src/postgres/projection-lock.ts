import pg from 'pg';
import type { Pool } from 'pg';
import type { ProjectionLease, ProjectionLock, WakeUpSource } from '../projections/target.js';
import { translatePgError } from './pg-errors.js';
import type { PostgresEventStore } from './postgres-event-store.js';
import { assertValidSchemaName, quoteIdentifier } from './schema-name.js';

/**
 * A connection of its own (not from the pool): it lives as long as a lock or a LISTEN does. It
 * always has an `'error'` listener (a dropped connection is reported through `onError`, never as
 * an uncaught exception), and a failed connect is ended and translated.
 */
async function openDedicatedClient(pool: Pool, schema: string, action: string, onError: (error: Error) => void = () => {}): Promise<pg.Client> {
  const client = new pg.Client({ ...pool.options, application_name: 'eventfold-projection' });
  client.on('error', onError);
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => undefined);
    throw translatePgError(error, action, schema);
  }
  return client;
}

/**
 * One runner per projection across processes: a session-level advisory lock, held on a dedicated
 * connection for as long as the runner runs. The key is a 64-bit hash of schema and projection
 * name (`hashtextextended`). If the connection drops, PostgreSQL releases the lock and the runner
 * is told it lost it (it then takes it again once the server is back); a crashed process's lock
 * goes with its connection, so a waiting runner takes over at once.
 */
export class PostgresProjectionLock implements ProjectionLock {
  constructor(
    private readonly pool: Pool,
    private readonly schema: string,
  ) {
    assertValidSchemaName(schema);
  }

  lockKey(projection: string): string {
    return `eventfold.projection:${this.schema}.${projection}`;
  }

  async tryAcquire(projection: string): Promise<ProjectionLease | undefined> {
    let lostListener: ((reason: string, cause?: unknown) => void) | undefined;
    let lostReason: { reason: string; cause?: unknown } | undefined;
    let released = false;
    const lose = (reason: string, cause?: unknown): void => {
      if (released || lostReason !== undefined) return;
      lostReason = { reason, cause };
      lostListener?.(reason, cause);
    };
    const client = await openDedicatedClient(this.pool, this.schema, 'take a projection lock', (error) =>
      lose('its database connection failed', error),
    );
    const key = this.lockKey(projection);
    let acquired = false;
    try {
      const result = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked', [key]);
      acquired = result.rows[0]?.locked === true;
    } catch (error) {
      throw translatePgError(error, 'take a projection lock', this.schema);
    } finally {
      if (!acquired) {
        released = true;
        await client.end().catch(() => undefined);
      }
    }
    if (!acquired) return undefined;
    client.on('end', () => lose('its database connection ended'));
    return {
      onLost: (listener) => {
        lostListener = listener;
        if (lostReason !== undefined) listener(lostReason.reason, lostReason.cause);
      },
      release: async () => {
        if (released) return;
        released = true;
        try {
          if (lostReason === undefined) await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]);
        } catch {
          // Ending the session below releases the lock in any case.
        } finally {
          await client.end().catch(() => undefined);
        }
      },
    };
  }
}

/**
 * Wakes a runner on every append: LISTEN on the store's channel (`eventfold_<schema>`), on a
 * dedicated connection. When that connection drops, the runner is told (`onBroken`) and opens a
 * new one with backoff; it polls meanwhile.
 */
export function postgresWakeUps(store: PostgresEventStore): WakeUpSource {
  return async (listener, onBroken) => {
    let closing = false;
    const broken = (error: unknown): void => {
      if (!closing) onBroken(error);
      closing = true;
    };
    const client = await openDedicatedClient(store.pool, store.schema, 'listen for appends', broken);
    client.on('notification', () => listener());
    client.on('end', () => broken(new Error('the LISTEN connection ended')));
    try {
      await client.query(`LISTEN ${quoteIdentifier(store.notifyChannel)}`);
    } catch (error) {
      closing = true;
      await client.end().catch(() => undefined);
      throw translatePgError(error, 'listen for appends', store.schema);
    }
    return async () => {
      closing = true;
      await client.end().catch(() => undefined);
    };
  };
}
