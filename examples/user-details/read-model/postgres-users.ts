import { defineProjection, EventfoldError } from 'eventfold';
import type { PostgresProjectionContext } from 'eventfold/postgres';
import type pg from 'pg';
import { FORGOTTEN_EMAIL, type UserEvent } from '../domain/user.js';
import { isStoreUnavailable } from '../unavailable.js';
import { rowToView, userIdOf, type UserPage, type UserReadModel, type UserRow } from './user-view.js';

/** `schema` is validated by the store before it gets here; it is still quoted. */
function table(schema: string): string {
  return `"${schema.replaceAll('"', '""')}".users`;
}

function ddl(schema: string): string {
  const t = table(schema);
  return `CREATE TABLE IF NOT EXISTS ${t} (
    id            text PRIMARY KEY,
    user_name     text NOT NULL,
    email         text NOT NULL,
    status        text NOT NULL,
    version       integer NOT NULL,
    registered_at timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
  );
  CREATE INDEX IF NOT EXISTS users_user_name ON ${t} (user_name);
  CREATE INDEX IF NOT EXISTS users_registered ON ${t} (registered_at, id);`;
}

/** Runs one statement of the projection; a lost connection surfaces with a stable code (see `classify`). */
async function run(client: Pick<pg.PoolClient, 'query'>, text: string, values: unknown[] = []): Promise<void> {
  try {
    await client.query(text, values);
  } catch (error) {
    throw classify(error);
  }
}

/** The `users` read model, in the same PostgreSQL schema as the events. Updates are version-guarded (idempotent). */
export function postgresUsersProjection(schema: string) {
  const t = table(schema);
  return defineProjection<UserEvent, PostgresProjectionContext>({
    name: 'users',
    version: 1,
    setup: async ({ client }) => {
      await run(client, ddl(schema));
    },
    reset: async ({ client }) => {
      await run(client, `DELETE FROM ${t}`);
    },
    handlers: {
      UserRegistered: async (e, { client }) => {
        await run(client, 
          `INSERT INTO ${t} (id, user_name, email, status, version, registered_at, updated_at)
           VALUES ($1, $2, $3, 'active', $4, $5, $5) ON CONFLICT (id) DO NOTHING`,
          [userIdOf(e.streamId), e.data.userName, e.data.email, e.version, e.data.registeredAt],
        );
      },
      PasswordChanged: async (e, { client }) => {
        await run(client, `UPDATE ${t} SET version = $1, updated_at = $2 WHERE id = $3 AND version < $1`, [
          e.version,
          e.data.changedAt,
          userIdOf(e.streamId),
        ]);
      },
      EmailChanged: async (e, { client }) => {
        await run(client, `UPDATE ${t} SET email = $1, version = $2, updated_at = $3 WHERE id = $4 AND version < $2`, [
          e.data.email,
          e.version,
          e.data.changedAt,
          userIdOf(e.streamId),
        ]);
      },
      UserRenamed: async (e, { client }) => {
        await run(client, `UPDATE ${t} SET user_name = $1, version = $2, updated_at = $3 WHERE id = $4 AND version < $2`, [
          e.data.userName,
          e.version,
          e.data.renamedAt,
          userIdOf(e.streamId),
        ]);
      },
      UserDeactivated: async (e, { client }) => {
        await run(client, `UPDATE ${t} SET status = 'deactivated', version = $1, updated_at = $2 WHERE id = $3 AND version < $1`, [
          e.version,
          e.data.deactivatedAt,
          userIdOf(e.streamId),
        ]);
      },
      UserForgotten: async (e, { client }) => {
        await client.query(
          `UPDATE ${t} SET email = $1, status = 'deactivated', version = $2, updated_at = $3 WHERE id = $4 AND version < $2`,
          [FORGOTTEN_EMAIL, e.version, e.data.forgottenAt, userIdOf(e.streamId)],
        );
      },
    },
  });
}


/** The read model could not reach PostgreSQL; the query may be retried (HTTP 503). */
export class ReadModelUnavailableError extends EventfoldError {
  readonly code = 'STORE_UNAVAILABLE' as const;
}

/**
 * Gives the read model's connection failures a stable code. pg reports a dropped connection
 * ("terminated unexpectedly") and a connect timeout as plain Errors without a SQLSTATE; every
 * error the server itself raises has one. So a failure with a connection code, or a plain Error
 * without any code, means the database could not be reached; anything else passes through.
 */
function classify(error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  const plainDriverError = error instanceof Error && error.constructor === Error && code === undefined;
  if (isStoreUnavailable(error) || plainDriverError) {
    return new ReadModelUnavailableError('The users read model cannot reach PostgreSQL right now.', { cause: error });
  }
  return error;
}

export async function postgresUserReadModel(pool: pg.Pool, schema: string): Promise<UserReadModel> {
  await pool.query(ddl(schema));
  const t = table(schema);
  const query = async <R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> => {
    try {
      return await pool.query<R>(text, values);
    } catch (error) {
      throw classify(error);
    }
  };
  return {
    async list({ limit, offset }): Promise<UserPage> {
      const [rows, count] = await Promise.all([
        query<UserRow>(`SELECT * FROM ${t} ORDER BY registered_at, id LIMIT $1 OFFSET $2`, [limit, offset]),
        query<{ total: string }>(`SELECT count(*) AS total FROM ${t}`),
      ]);
      return { users: rows.rows.map(rowToView), total: Number(count.rows[0]?.total ?? 0), limit, offset };
    },
    async byId(id) {
      const { rows } = await query<UserRow>(`SELECT * FROM ${t} WHERE id = $1`, [id]);
      return rows[0] && rowToView(rows[0]);
    },
    async byUserName(userName) {
      const { rows } = await query<UserRow>(`SELECT * FROM ${t} WHERE user_name = $1 AND status = 'active'`, [
        userName.trim().toLowerCase(),
      ]);
      return rows[0] && rowToView(rows[0]);
    },
  };
}
