import {
  CommandBus,
  isEventfoldError,
  Repository,
  UnitOfWork,
  type Command,
  type CommandContext,
  type EventBus,
  type EventStore,
  type SnapshotStore,
} from 'eventfold';
import { hashPassword, type PasswordHash } from './domain/password.js';
import { UserNameReservation } from './domain/user-name.js';
import {
  assertStrongPassword,
  normalizeEmail,
  normalizeUserName,
  User,
  UserRuleError,
  UserVersionConflictError,
} from './domain/user.js';
import { createHashGate, type HashGateOptions } from './hash-gate.js';

/**
 * What the client knew when it sent the command (optimistic lock): the version it read, several
 * versions any of which it accepts, or only that the user exists (HTTP `If-Match: *`). A version
 * the user is not at fails with `CONCURRENCY_CONFLICT`, before any costly work, and nothing is written.
 */
export type VersionPrecondition = number | readonly number[] | 'exists';

/** The version to save at, if the user is at a version the caller accepts; else a conflict. */
export function checkPrecondition(streamId: string, user: User, precondition: VersionPrecondition): number {
  if (precondition === 'exists') return user.version;
  const accepted = typeof precondition === 'number' ? precondition === user.version : precondition.includes(user.version);
  if (!accepted) throw new UserVersionConflictError(streamId, precondition, user.version);
  return user.version;
}

export type RegisterUser = Command<'RegisterUser', { userId: string; userName: string; email: string; password: string }>;
export type ChangePassword = Command<'ChangePassword', { userId: string; newPassword: string; originalVersion: VersionPrecondition }>;
export type ChangeEmail = Command<'ChangeEmail', { userId: string; email: string; originalVersion: VersionPrecondition }>;
export type RenameUser = Command<'RenameUser', { userId: string; userName: string; originalVersion: VersionPrecondition }>;
export type DeactivateUser = Command<'DeactivateUser', { userId: string; reason: string; originalVersion?: VersionPrecondition }>;
/** "Forget me": closes the account and shreds the user's email (see evolution.ts). */
export type ForgetUser = Command<'ForgetUser', { userId: string }>;

export interface CommandResult {
  readonly userId: string;
  /** The user's stream version after the command. */
  readonly version: number;
}

export interface WriteSideOptions {
  readonly store: EventStore;
  readonly snapshots?: SnapshotStore;
  readonly eventBus?: EventBus;
  /** The only clock the domain sees. */
  readonly clock?: () => Date;
  /** Swappable for tests and benchmarks; scrypt by default. */
  readonly hash?: (password: string) => Promise<PasswordHash>;
  /** Bounds on concurrent password hashing; see `createHashGate`. */
  readonly hashing?: HashGateOptions;
  /** Deletes a user's encryption key (crypto-shredding); called after `UserForgotten` is stored. */
  readonly forget?: (userId: string) => Promise<void>;
}

/** Attempts of a command sent with `'exists'` when another writer keeps getting in first. */
const EXISTS_ATTEMPTS = 3;

/** The write side: repositories and the command handlers, wired into a typed CommandBus. */
export function createWriteSide(options: WriteSideOptions) {
  const { store } = options;
  const clock = options.clock ?? (() => new Date());
  const rawHash = options.hash ?? hashPassword;
  const gate = createHashGate(options.hashing);
  const hash = (password: string): Promise<PasswordHash> => gate(() => rawHash(password));
  const users = new Repository(store, User, {
    streamPrefix: 'user',
    ...(options.eventBus === undefined ? {} : { eventBus: options.eventBus }),
    ...(options.snapshots === undefined ? {} : { snapshots: { store: options.snapshots, snapshotEvery: 50, schemaVersion: 1 } }),
  });
  const userNames = new Repository(store, UserNameReservation, {
    streamPrefix: 'username',
    ...(options.eventBus === undefined ? {} : { eventBus: options.eventBus }),
  });

  async function reservationFor(userName: string): Promise<UserNameReservation> {
    return (await userNames.find(userName)) ?? new UserNameReservation(userName);
  }

  /** Turns a lost race on a user-name stream into the domain error a client understands. */
  function translateConflict(error: unknown, userName: string): never {
    if (isConflictOn(error, userNames.streamIdOf(userName))) {
      throw new UserRuleError('USER_NAME_TAKEN', `The user name '${userName}' is already taken.`);
    }
    throw error;
  }

  /** A user that must exist: `USER_NOT_FOUND` (a domain error, cheap) otherwise. */
  async function existingUser(userId: string): Promise<User> {
    const user = await users.find(userId);
    if (user === undefined) throw new UserRuleError('USER_NOT_FOUND', `No user '${userId}'.`);
    return user;
  }

  const expectedVersion = (user: User, precondition: VersionPrecondition): number =>
    checkPrecondition(users.streamIdOf(user.id), user, precondition);

  /**
   * Loads the user, runs the cheap checks (exists, `check`, expected version), then `write`.
   * With `'exists'`, a write that loses a race to another writer is retried on the new version.
   */
  async function updateUser(
    userId: string,
    precondition: VersionPrecondition,
    check: (user: User) => void,
    write: (user: User, expected: number) => Promise<void>,
    prepare?: () => Promise<void>,
  ): Promise<CommandResult> {
    let user = await existingUser(userId);
    check(user);
    let expected = expectedVersion(user, precondition);
    await prepare?.();
    for (let attempt = 1; ; attempt++) {
      try {
        await write(user, expected);
        return { userId, version: user.version };
      } catch (error) {
        const retry = precondition === 'exists' && attempt < EXISTS_ATTEMPTS && isConflictOn(error, users.streamIdOf(userId));
        if (!retry) throw error;
        user = await existingUser(userId);
        check(user);
        expected = user.version;
      }
    }
  }

  const commandBus = new CommandBus()
    .register('RegisterUser', async (command: RegisterUser, context: CommandContext): Promise<CommandResult> => {
      const { userId, password } = command.data;
      const userName = normalizeUserName(command.data.userName);
      const email = normalizeEmail(command.data.email);
      assertStrongPassword(password);
      if ((await users.find(userId)) !== undefined) {
        throw new UserRuleError('USER_ALREADY_REGISTERED', `User '${userId}' is already registered.`);
      }
      const reservation = await reservationFor(userName);
      reservation.reserve(userId);
      const user = User.register(userId, { userName, email, password: await hash(password) }, clock());
      try {
        await new UnitOfWork(store)
          .add(users, user, { metadata: context.metadata })
          .add(userNames, reservation, { metadata: context.metadata })
          .commit();
      } catch (error) {
        if (isConflictOn(error, users.streamIdOf(userId))) {
          throw new UserRuleError('USER_ALREADY_REGISTERED', `User '${userId}' is already registered.`);
        }
        translateConflict(error, userName);
      }
      return { userId, version: user.version };
    })
    .register('ChangePassword', async (command: ChangePassword, context: CommandContext): Promise<CommandResult> => {
      const { userId, newPassword, originalVersion } = command.data;
      // Cheap checks first (length, exists, active, version): only then pay for the hash.
      assertStrongPassword(newPassword);
      let hashed: PasswordHash | undefined;
      return updateUser(
        userId,
        originalVersion,
        (user) => user.assertActive('change the password of'),
        async (user, expected) => {
          user.changePassword(hashed!, clock());
          await users.save(user, { expectedVersion: expected, metadata: context.metadata });
        },
        async () => {
          hashed = await hash(newPassword);
        },
      );
    })
    .register('ChangeEmail', async (command: ChangeEmail, context: CommandContext): Promise<CommandResult> => {
      const { userId, email, originalVersion } = command.data;
      return updateUser(
        userId,
        originalVersion,
        (user) => user.assertActive('change the email of'),
        async (user, expected) => {
          user.changeEmail(email, clock());
          if (user.uncommittedEvents.length > 0) {
            await users.save(user, { expectedVersion: expected, metadata: context.metadata });
          }
        },
      );
    })
    .register('RenameUser', async (command: RenameUser, context: CommandContext): Promise<CommandResult> => {
      const { userId, originalVersion } = command.data;
      return updateUser(
        userId,
        originalVersion,
        (user) => user.assertActive('rename'),
        async (user, expected) => {
          const previous = user.userName;
          user.rename(command.data.userName, clock());
          if (user.uncommittedEvents.length === 0) return;
          const taken = await reservationFor(user.userName);
          taken.reserve(userId);
          const released = await reservationFor(previous);
          released.release(userId);
          try {
            await new UnitOfWork(store)
              .add(users, user, { expectedVersion: expected, metadata: context.metadata })
              .add(userNames, taken, { metadata: context.metadata })
              .add(userNames, released, { metadata: context.metadata })
              .commit();
          } catch (error) {
            translateConflict(error, user.userName);
          }
        },
      );
    })
    .register('DeactivateUser', async (command: DeactivateUser, context: CommandContext): Promise<CommandResult> => {
      const { userId, reason, originalVersion } = command.data;
      return updateUser(
        userId,
        originalVersion ?? 'exists',
        () => undefined,
        async (user, expected) => {
          if (!user.deactivate(reason, clock())) return;
          const reservation = await reservationFor(user.userName);
          reservation.release(userId);
          const work = new UnitOfWork(store).add(users, user, { expectedVersion: expected, metadata: context.metadata });
          if (reservation.uncommittedEvents.length > 0) work.add(userNames, reservation, { metadata: context.metadata });
          await work.commit();
        },
      );
    })
    .register('ForgetUser', async (command: ForgetUser, context: CommandContext): Promise<CommandResult> => {
      const { userId } = command.data;
      const user = await users.load(userId);
      if (user.forget(clock())) {
        const reservation = await reservationFor(user.userName);
        reservation.release(userId);
        const work = new UnitOfWork(store).add(users, user, { metadata: context.metadata });
        if (reservation.uncommittedEvents.length > 0) work.add(userNames, reservation, { metadata: context.metadata });
        await work.commit();
      }
      // After the event: a retry after a failure here finds the user forgotten and shreds again.
      await options.forget?.(userId);
      return { userId, version: user.version };
    });

  return { commandBus, users, userNames };
}

export type WriteSide = ReturnType<typeof createWriteSide>;

/**
 * Codes of a failed expected-version check: a stale version, or a stream created by someone else
 * first (newer library versions report that case with its own code).
 */
export const CONFLICT_CODES: ReadonlySet<string> = new Set(['CONCURRENCY_CONFLICT', 'STREAM_ALREADY_EXISTS', 'AGGREGATE_ALREADY_EXISTS']);

/** A version conflict on `streamId`, recognised by its code, whichever copy of the library threw it. */
function isConflictOn(error: unknown, streamId: string): boolean {
  return isEventfoldError(error) && CONFLICT_CODES.has(error.code) && (error as { streamId?: unknown }).streamId === streamId;
}
