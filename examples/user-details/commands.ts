import {
  CommandBus,
  ConcurrencyError,
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
import { assertStrongPassword, normalizeEmail, normalizeUserName, User, UserRuleError } from './domain/user.js';

export type RegisterUser = Command<'RegisterUser', { userId: string; userName: string; email: string; password: string }>;
/** `originalVersion` is the version the client saw: the save expects exactly it (optimistic lock). */
export type ChangePassword = Command<'ChangePassword', { userId: string; newPassword: string; originalVersion: number }>;
export type ChangeEmail = Command<'ChangeEmail', { userId: string; email: string; originalVersion: number }>;
export type RenameUser = Command<'RenameUser', { userId: string; userName: string; originalVersion: number }>;
export type DeactivateUser = Command<'DeactivateUser', { userId: string; reason: string; originalVersion?: number }>;
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
  /** Deletes a user's encryption key (crypto-shredding); called after `UserForgotten` is stored. */
  readonly forget?: (userId: string) => Promise<void>;
}

/** The write side: repositories and the command handlers, wired into a typed CommandBus. */
export function createWriteSide(options: WriteSideOptions) {
  const { store } = options;
  const clock = options.clock ?? (() => new Date());
  const hash = options.hash ?? hashPassword;
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
    if (error instanceof ConcurrencyError && error.streamId === userNames.streamIdOf(userName)) {
      throw new UserRuleError('USER_NAME_TAKEN', `The user name '${userName}' is already taken.`);
    }
    throw error;
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
        if (error instanceof ConcurrencyError && error.streamId === users.streamIdOf(userId)) {
          throw new UserRuleError('USER_ALREADY_REGISTERED', `User '${userId}' is already registered.`);
        }
        translateConflict(error, userName);
      }
      return { userId, version: user.version };
    })
    .register('ChangePassword', async (command: ChangePassword, context: CommandContext): Promise<CommandResult> => {
      const { userId, newPassword, originalVersion } = command.data;
      assertStrongPassword(newPassword);
      const user = await users.load(userId);
      user.changePassword(await hash(newPassword), clock());
      await users.save(user, { expectedVersion: originalVersion, metadata: context.metadata });
      return { userId, version: user.version };
    })
    .register('ChangeEmail', async (command: ChangeEmail, context: CommandContext): Promise<CommandResult> => {
      const { userId, email, originalVersion } = command.data;
      const user = await users.load(userId);
      user.changeEmail(email, clock());
      if (user.uncommittedEvents.length > 0) {
        await users.save(user, { expectedVersion: originalVersion, metadata: context.metadata });
      }
      return { userId, version: user.version };
    })
    .register('RenameUser', async (command: RenameUser, context: CommandContext): Promise<CommandResult> => {
      const { userId, originalVersion } = command.data;
      const user = await users.load(userId);
      const previous = user.userName;
      user.rename(command.data.userName, clock());
      if (user.uncommittedEvents.length === 0) return { userId, version: user.version };
      const taken = await reservationFor(user.userName);
      taken.reserve(userId);
      const released = await reservationFor(previous);
      released.release(userId);
      try {
        await new UnitOfWork(store)
          .add(users, user, { expectedVersion: originalVersion, metadata: context.metadata })
          .add(userNames, taken, { metadata: context.metadata })
          .add(userNames, released, { metadata: context.metadata })
          .commit();
      } catch (error) {
        translateConflict(error, user.userName);
      }
      return { userId, version: user.version };
    })
    .register('DeactivateUser', async (command: DeactivateUser, context: CommandContext): Promise<CommandResult> => {
      const { userId, reason, originalVersion } = command.data;
      const user = await users.load(userId);
      if (!user.deactivate(reason, clock())) return { userId, version: user.version };
      const reservation = await reservationFor(user.userName);
      reservation.release(userId);
      const work = new UnitOfWork(store).add(users, user, {
        ...(originalVersion === undefined ? {} : { expectedVersion: originalVersion }),
        metadata: context.metadata,
      });
      if (reservation.uncommittedEvents.length > 0) work.add(userNames, reservation, { metadata: context.metadata });
      await work.commit();
      return { userId, version: user.version };
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
