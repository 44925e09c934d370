import { Aggregate, assertNever, InvalidOperationError, type Event, type Snapshottable } from 'eventfold';
import type { PasswordHash } from './password.js';

/** The user's events: past tense, immutable, and free of clear-text passwords. */
export type UserRegistered = Event<
  'UserRegistered',
  { userName: string; email: string; password: PasswordHash; registeredAt: string }
>;
export type PasswordChanged = Event<'PasswordChanged', { password: PasswordHash; changedAt: string }>;
export type EmailChanged = Event<'EmailChanged', { email: string; changedAt: string }>;
export type UserRenamed = Event<'UserRenamed', { userName: string; previousUserName: string; renamedAt: string }>;
export type UserDeactivated = Event<'UserDeactivated', { reason: string; deactivatedAt: string }>;

export type UserEvent = UserRegistered | PasswordChanged | EmailChanged | UserRenamed | UserDeactivated;

/** A broken business rule of the user-details domain; `code` tells which. */
export class UserRuleError extends InvalidOperationError {
  constructor(
    override readonly code:
      | 'USER_ALREADY_REGISTERED'
      | 'USER_DEACTIVATED'
      | 'INVALID_EMAIL'
      | 'INVALID_USER_NAME'
      | 'USER_NAME_TAKEN'
      | 'USER_NOT_FOUND'
      | 'WEAK_PASSWORD'
      | 'PASSWORD_TOO_LONG',
    message: string,
  ) {
    super(message);
  }
}

// Deliberately simple: one @, no spaces, a dot in the domain. Full RFC 5322 is not a business rule.
const EMAIL = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;
const USER_NAME = /^[a-z0-9](?:[a-z0-9._-]{1,30}[a-z0-9])$/;

export function normalizeEmail(email: string): string {
  const trimmed = email.trim();
  if (trimmed.length > 254 || !EMAIL.test(trimmed)) {
    throw new UserRuleError('INVALID_EMAIL', `'${email}' is not a valid email address.`);
  }
  return trimmed.toLowerCase();
}

/** User names are compared case-insensitively: 'Alice' and 'alice' are the same name. */
export function normalizeUserName(userName: string): string {
  const name = userName.trim().toLowerCase();
  if (!USER_NAME.test(name)) {
    throw new UserRuleError(
      'INVALID_USER_NAME',
      `'${userName}' is not a valid user name: 3–32 characters of a–z, 0–9, '.', '_' or '-', starting and ending with a letter or digit.`,
    );
  }
  return name;
}

/** Long enough to allow passphrases; bounded so a request cannot buy an arbitrarily long hash. */
export const MAX_PASSWORD_LENGTH = 256;

export function assertStrongPassword(password: string): void {
  if (typeof password !== 'string' || password.length < 8) {
    throw new UserRuleError('WEAK_PASSWORD', 'A password needs at least 8 characters.');
  }
  if (password.length > MAX_PASSWORD_LENGTH) {
    throw new UserRuleError('PASSWORD_TOO_LONG', `A password has at most ${MAX_PASSWORD_LENGTH} characters.`);
  }
}

/**
 * The user is not at a version the caller accepted: someone changed it since the caller read it.
 * Same `code` and fields as the store's conflict error, so callers handle both alike.
 */
export class UserVersionConflictError extends InvalidOperationError {
  override readonly code = 'CONCURRENCY_CONFLICT';

  constructor(
    readonly streamId: string,
    readonly expectedVersion: number | readonly number[],
    readonly actualVersion: number,
  ) {
    super(
      `User stream '${streamId}' is at version ${actualVersion}, not at ${
        typeof expectedVersion === 'number' ? `version ${expectedVersion}` : `any of [${expectedVersion.join(', ')}]`
      }. Nothing was written: reload and retry.`,
    );
  }
}

export interface UserState {
  userName: string;
  email: string;
  password: PasswordHash;
  status: 'active' | 'deactivated';
  registeredAt: string;
  updatedAt: string;
}

/**
 * The User aggregate. Methods check the rules against the current state and raise events; `apply`
 * only folds. Time comes in as an argument so the domain never reads the clock itself.
 */
export class User extends Aggregate<UserEvent> implements Snapshottable<UserState> {
  private state: UserState | undefined;

  static register(
    id: string,
    input: { userName: string; email: string; password: PasswordHash },
    at: Date,
  ): User {
    const user = new User(id);
    user.raise('UserRegistered', {
      userName: normalizeUserName(input.userName),
      email: normalizeEmail(input.email),
      password: input.password,
      registeredAt: at.toISOString(),
    });
    return user;
  }

  get userName(): string {
    return this.current.userName;
  }

  get email(): string {
    return this.current.email;
  }

  get status(): UserState['status'] {
    return this.current.status;
  }

  get password(): PasswordHash {
    return this.current.password;
  }

  get registeredAt(): string {
    return this.current.registeredAt;
  }

  changePassword(password: PasswordHash, at: Date): void {
    this.assertActive('change the password of');
    this.raise('PasswordChanged', { password, changedAt: at.toISOString() });
  }

  changeEmail(email: string, at: Date): void {
    this.assertActive('change the email of');
    const normalized = normalizeEmail(email);
    if (normalized === this.current.email) return; // idempotent: no event for no change
    this.raise('EmailChanged', { email: normalized, changedAt: at.toISOString() });
  }

  rename(userName: string, at: Date): void {
    this.assertActive('rename');
    const normalized = normalizeUserName(userName);
    if (normalized === this.current.userName) return;
    this.raise('UserRenamed', { userName: normalized, previousUserName: this.current.userName, renamedAt: at.toISOString() });
  }

  /** Deactivating twice is not an error: the second time changes nothing (idempotent). */
  deactivate(reason: string, at: Date): boolean {
    if (this.current.status === 'deactivated') return false;
    this.raise('UserDeactivated', { reason, deactivatedAt: at.toISOString() });
    return true;
  }

  protected apply(event: UserEvent): void {
    switch (event.type) {
      case 'UserRegistered':
        this.state = {
          userName: event.data.userName,
          email: event.data.email,
          password: event.data.password,
          status: 'active',
          registeredAt: event.data.registeredAt,
          updatedAt: event.data.registeredAt,
        };
        return;
      case 'PasswordChanged':
        this.state = { ...this.current, password: event.data.password, updatedAt: event.data.changedAt };
        return;
      case 'EmailChanged':
        this.state = { ...this.current, email: event.data.email, updatedAt: event.data.changedAt };
        return;
      case 'UserRenamed':
        this.state = { ...this.current, userName: event.data.userName, updatedAt: event.data.renamedAt };
        return;
      case 'UserDeactivated':
        this.state = { ...this.current, status: 'deactivated', updatedAt: event.data.deactivatedAt };
        return;
      default:
        assertNever(event, 'Unknown user event');
    }
  }

  toSnapshot(): UserState {
    return this.current;
  }

  restoreSnapshot(state: UserState): void {
    this.state = state;
  }

  private get current(): UserState {
    if (this.state === undefined) throw new Error(`User '${this.id}' has no UserRegistered event.`);
    return this.state;
  }

  /** Throws `USER_DEACTIVATED` unless the user is active; cheap, so commands ask it before costly work. */
  assertActive(action: string): void {
    if (this.current.status === 'deactivated') {
      throw new UserRuleError('USER_DEACTIVATED', `Cannot ${action} user '${this.id}': the user is deactivated.`);
    }
  }
}
