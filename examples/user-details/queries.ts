import { InvalidArgumentError, isEventfoldError, QueryBus, type EventStore, type Query, type RecordedEvent } from 'eventfold';
import type { UserEvent } from './domain/user.js';
import { evolveUserView, type UserPage, type UserReadModel, type UserView } from './read-model/user-view.js';

export type ListUsers = Query<'ListUsers', { limit: number; offset: number }>;
export type GetUser = Query<'GetUser', { userId: string }>;
export type GetUserByName = Query<'GetUserByName', { userName: string }>;
/** The state of a user as of a version: folded from the log by the read side's own fold. */
export type GetUserAsOf = Query<'GetUserAsOf', { userId: string; version: number }>;
export type GetUserHistory = Query<'GetUserHistory', { userId: string }>;

/** One entry of a user's history, as the query side shows it: password hashes are never shown. */
export interface HistoryEntry {
  readonly version: number;
  readonly position: number;
  readonly type: string;
  readonly recordedAt: string;
  readonly data: Record<string, unknown>;
}

export const MAX_PAGE_SIZE = 100;

function redact(data: unknown): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...(data as Record<string, unknown>) };
  if ('password' in copy) copy['password'] = '[redacted]';
  return copy;
}

async function readUserStream(store: EventStore, userId: string, toVersion?: number): Promise<RecordedEvent<UserEvent>[] | undefined> {
  try {
    const events = await store
      .readStream(`user-${userId}`, toVersion === undefined ? {} : { toVersion })
      .toArray();
    return events as RecordedEvent<UserEvent>[];
  } catch (error) {
    if (isEventfoldError(error, 'STREAM_NOT_FOUND')) return undefined;
    throw error;
  }
}

/**
 * The query side: handlers that read the `users` read model, or the log for history and time
 * travel. They never load an aggregate and never write.
 */
export function createReadSide(readModel: UserReadModel, store: EventStore) {
  return new QueryBus()
    .register('ListUsers', async (query: ListUsers): Promise<UserPage> => {
      const { limit, offset } = query.params;
      if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
        throw new InvalidArgumentError(`limit must be an integer from 1 to ${MAX_PAGE_SIZE}.`);
      }
      if (!Number.isSafeInteger(offset) || offset < 0) throw new InvalidArgumentError('offset must be an integer >= 0.');
      return readModel.list({ limit, offset });
    })
    .register('GetUser', (query: GetUser): Promise<UserView | undefined> => readModel.byId(query.params.userId))
    .register('GetUserByName', (query: GetUserByName): Promise<UserView | undefined> =>
      readModel.byUserName(query.params.userName),
    )
    .register('GetUserAsOf', async (query: GetUserAsOf): Promise<UserView | undefined> => {
      const { userId, version } = query.params;
      if (!Number.isSafeInteger(version) || version < 1) throw new InvalidArgumentError('version must be an integer >= 1.');
      const events = await readUserStream(store, userId, version);
      if (events === undefined || events.length < version) return undefined;
      return events.reduce<UserView | undefined>(evolveUserView, undefined);
    })
    .register('GetUserHistory', async (query: GetUserHistory): Promise<HistoryEntry[] | undefined> => {
      const events = await readUserStream(store, query.params.userId);
      return events?.map((e) => ({
        version: e.version,
        position: e.position,
        type: e.type,
        recordedAt: e.recordedAt.toISOString(),
        data: redact(e.data),
      }));
    });
}

export type QuerySide = ReturnType<typeof createReadSide>;
