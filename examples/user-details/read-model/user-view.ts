import type { RecordedEvent } from 'eventfold';
import { FORGOTTEN_EMAIL, type UserEvent } from '../domain/user.js';

/** One row of the `users` read model: what the query side shows. Never a password or its hash. */
export interface UserView {
  readonly id: string;
  readonly userName: string;
  readonly email: string;
  readonly status: 'active' | 'deactivated';
  readonly version: number;
  readonly registeredAt: string;
  readonly updatedAt: string;
}

export interface UserPage {
  readonly users: readonly UserView[];
  readonly total: number;
  readonly limit: number;
  readonly offset: number;
}

export const USER_STREAM_PREFIX = 'user-';

export function userIdOf(streamId: string): string {
  return streamId.slice(USER_STREAM_PREFIX.length);
}

/**
 * The read side's own fold of a user's events into a view. Time travel (`GET /users/:id?version=N`)
 * folds the stream up to N with it, so the query side never loads the write side's aggregate.
 */
export function evolveUserView(view: UserView | undefined, event: RecordedEvent<UserEvent>): UserView | undefined {
  switch (event.type) {
    case 'UserRegistered':
      return {
        id: userIdOf(event.streamId),
        userName: event.data.userName,
        email: event.data.email,
        status: 'active',
        version: event.version,
        registeredAt: event.data.registeredAt,
        updatedAt: event.data.registeredAt,
      };
    case 'PasswordChanged':
      return view && { ...view, version: event.version, updatedAt: event.data.changedAt };
    case 'EmailChanged':
      return view && { ...view, email: event.data.email, version: event.version, updatedAt: event.data.changedAt };
    case 'UserRenamed':
      return view && { ...view, userName: event.data.userName, version: event.version, updatedAt: event.data.renamedAt };
    case 'UserDeactivated':
      return view && { ...view, status: 'deactivated', version: event.version, updatedAt: event.data.deactivatedAt };
    case 'UserForgotten':
      return view && { ...view, email: FORGOTTEN_EMAIL, status: 'deactivated', version: event.version, updatedAt: event.data.forgottenAt };
    default:
      return view;
  }
}

/** The read side's query API, implemented per database. */
export interface UserReadModel {
  list(options: { limit: number; offset: number }): Promise<UserPage>;
  byId(id: string): Promise<UserView | undefined>;
  byUserName(userName: string): Promise<UserView | undefined>;
}

/** A row of the `users` table as both databases return it (PostgreSQL gives timestamps as Dates). */
export interface UserRow {
  readonly id: string;
  readonly user_name: string;
  readonly email: string;
  readonly status: 'active' | 'deactivated';
  readonly version: number;
  readonly registered_at: string | Date;
  readonly updated_at: string | Date;
}

const iso = (value: string | Date): string => (typeof value === 'string' ? value : value.toISOString());

export function rowToView(row: UserRow): UserView {
  return {
    id: row.id,
    userName: row.user_name,
    email: row.email,
    status: row.status,
    version: row.version,
    registeredAt: iso(row.registered_at),
    updatedAt: iso(row.updated_at),
  };
}
