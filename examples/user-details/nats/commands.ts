import { COMMAND_STREAM_PREFIX, CommandBus, ConcurrencyError, isEventfoldError, Repository, type CommandContext } from 'eventfold';
import { UniqueValueTakenError, type NatsUniqueValues } from 'eventfold/nats';
import { checkPrecondition } from '../commands.js';
import type {
  ChangeEmail,
  ChangePassword,
  CommandResult,
  DeactivateUser,
  ForgetUser,
  RegisterUser,
  RenameUser,
  WriteSide,
  WriteSideOptions,
} from '../commands.js';
import { hashPassword } from '../domain/password.js';
import { UserNameReservation } from '../domain/user-name.js';
import { assertStrongPassword, normalizeEmail, normalizeUserName, User, UserRuleError } from '../domain/user.js';

export const USER_NAME_SCOPE = 'user name';

/**
 * The write side on NATS JetStream, which cannot append to a user's stream and a user-name
 * stream in one atomic step. A user name is reserved in a JetStream KV bucket first
 * (create-if-absent, enforced by the server), then the user's own events are appended:
 * - the append fails: the reservation is released before the error is reported;
 * - the process dies in between: the reservation is orphaned, and reclaimed by the next
 *   registration of that name once it is older than the grace period, because the user's stream
 *   shows that its owner does not hold the name (see `userNameIsHeld`);
 * - a rename reserves the new name before its append and releases the old one after it.
 *
 * With idempotent commands (`IdempotentCommands`, see evolution.ts) the first append of a command
 * claims its id first (no atomic multi-stream append here either). A repeat that loses that claim
 * to its twin leaves the name to the twin, which registers the same user under it.
 */
export function createNatsWriteSide(options: WriteSideOptions & { readonly names: NatsUniqueValues }): WriteSide {
  const { store, names } = options;
  const clock = options.clock ?? (() => new Date());
  const hash = options.hash ?? hashPassword;
  const users = new Repository(store, User, {
    streamPrefix: 'user',
    ...(options.eventBus === undefined ? {} : { eventBus: options.eventBus }),
    ...(options.snapshots === undefined ? {} : { snapshots: { store: options.snapshots, snapshotEvery: 50, schemaVersion: 1 } }),
  });
  // Kept for the shape of `WriteSide`: on NATS, user names live in the KV bucket, not in streams.
  const userNames = new Repository(store, UserNameReservation, { streamPrefix: 'username' });

  async function reserve(userName: string, userId: string): Promise<void> {
    try {
      await names.reserve(USER_NAME_SCOPE, userName, userId);
    } catch (error) {
      if (error instanceof UniqueValueTakenError) throw new UserRuleError('USER_NAME_TAKEN', `The user name '${userName}' is already taken.`);
      throw error;
    }
  }

  const release = (userName: string, userId: string): Promise<unknown> =>
    names.release(USER_NAME_SCOPE, userName, userId).catch(() => false);

  /**
   * After a failed append: frees the name unless someone with the same owner id holds it now, a
   * twin of this command that claimed its id, or a racing registration of the same user that won.
   */
  async function releaseAfterFailure(error: unknown, userName: string, userId: string): Promise<void> {
    if (isConflictOnClaim(error)) return;
    const holder = await users.find(userId).catch(() => undefined);
    if (holder !== undefined && holder.status === 'active' && holder.userName === userName) return;
    await release(userName, userId);
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
      await reserve(userName, userId);
      const user = User.register(userId, { userName, email, password: await hash(password) }, clock());
      try {
        await users.save(user, { metadata: context.metadata });
      } catch (error) {
        await releaseAfterFailure(error, userName, userId);
        if (error instanceof ConcurrencyError && error.streamId === users.streamIdOf(userId)) {
          throw new UserRuleError('USER_ALREADY_REGISTERED', `User '${userId}' is already registered.`);
        }
        throw error;
      }
      return { userId, version: user.version };
    })
    .register('ChangePassword', async (command: ChangePassword, context: CommandContext): Promise<CommandResult> => {
      const { userId, newPassword, originalVersion } = command.data;
      assertStrongPassword(newPassword);
      const user = await users.load(userId);
      // The cheap version check comes before the costly hash.
      const expectedVersion = checkPrecondition(users.streamIdOf(userId), user, originalVersion);
      user.changePassword(await hash(newPassword), clock());
      await users.save(user, { expectedVersion, metadata: context.metadata });
      return { userId, version: user.version };
    })
    .register('ChangeEmail', async (command: ChangeEmail, context: CommandContext): Promise<CommandResult> => {
      const { userId, email, originalVersion } = command.data;
      const user = await users.load(userId);
      user.changeEmail(email, clock());
      if (user.uncommittedEvents.length > 0) {
        await users.save(user, { expectedVersion: checkPrecondition(users.streamIdOf(userId), user, originalVersion), metadata: context.metadata });
      }
      return { userId, version: user.version };
    })
    .register('RenameUser', async (command: RenameUser, context: CommandContext): Promise<CommandResult> => {
      const { userId, originalVersion } = command.data;
      const user = await users.load(userId);
      const previous = user.userName;
      user.rename(command.data.userName, clock());
      if (user.uncommittedEvents.length === 0) return { userId, version: user.version };
      await reserve(user.userName, userId);
      try {
        await users.save(user, { expectedVersion: checkPrecondition(users.streamIdOf(userId), user, originalVersion), metadata: context.metadata });
      } catch (error) {
        await releaseAfterFailure(error, user.userName, userId);
        throw error;
      }
      await release(previous, userId);
      return { userId, version: user.version };
    })
    .register('DeactivateUser', async (command: DeactivateUser, context: CommandContext): Promise<CommandResult> => {
      const { userId, reason, originalVersion } = command.data;
      const user = await users.load(userId);
      if (!user.deactivate(reason, clock())) return { userId, version: user.version };
      await users.save(user, {
        ...(originalVersion === undefined ? {} : { expectedVersion: checkPrecondition(users.streamIdOf(userId), user, originalVersion) }),
        metadata: context.metadata,
      });
      await release(user.userName, userId);
      return { userId, version: user.version };
    })
    .register('ForgetUser', async (command: ForgetUser, context: CommandContext): Promise<CommandResult> => {
      const { userId } = command.data;
      const user = await users.load(userId);
      if (user.forget(clock())) {
        await users.save(user, { metadata: context.metadata });
        await release(user.userName, userId);
      }
      // After the event: a retry after a failure here finds the user forgotten and shreds again.
      await options.forget?.(userId);
      return { userId, version: user.version };
    });

  return { commandBus, users, userNames };
}

/** A lost race for a command id's claim (`$command-<id>`): a twin of this command runs it. */
function isConflictOnClaim(error: unknown): boolean {
  if (!isEventfoldError(error)) return false;
  const streamId = (error as { streamId?: unknown }).streamId;
  return typeof streamId === 'string' && streamId.startsWith(COMMAND_STREAM_PREFIX);
}

/** What the streams say: `owner` holds `userName` while it is an active user of that name. */
export function userNameIsHeld(users: Repository<User>) {
  return async (_scope: string, userName: string, owner: string): Promise<boolean> => {
    const user = await users.find(owner);
    return user !== undefined && user.status === 'active' && user.userName === userName;
  };
}
