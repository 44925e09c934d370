/**
 * Living with the user events for years: schemas that validate commands and events, upcasters for
 * shapes older builds stored, idempotent commands (the HTTP API's Idempotency-Key), and
 * crypto-shredding of the email so a user can be forgotten while the history stays.
 */
import { z } from 'zod';
import {
  defineSchemas,
  definePersonalData,
  EncryptedSnapshotStore,
  IdempotentCommands,
  layerEventStore,
  ProjectionRunner,
  Upcasters,
  validateCommands,
  type CommandsFromSchemas,
  type EventStore,
  type KeyStore,
  type Projection,
  type ProjectionLock,
  type ProjectionRunnerSettings,
  type ProjectionTarget,
  type SnapshotStore,
  type WakeUpSource,
} from 'eventfold';
import type { UserEvent, UserRegistered } from './domain/user.js';
import { FORGOTTEN_EMAIL } from './domain/user.js';
import { USER_STREAM_PREFIX, userIdOf } from './read-model/user-view.js';

/** The email is personal: encrypted with the user's own key, so `ForgetUser` can shred it. */
export const userPersonalData = definePersonalData<UserEvent>({
  UserRegistered: { subject: (_data, streamId) => userIdOf(streamId), fields: ['email'], redacted: FORGOTTEN_EMAIL },
  EmailChanged: { subject: (_data, streamId) => userIdOf(streamId), fields: ['email'], redacted: FORGOTTEN_EMAIL },
});

/**
 * Shapes of earlier builds: the first one stored `UserRegistered` without `registeredAt` (the
 * time it was recorded stands in), and called the email change `UserEmailChanged`.
 */
export function userUpcasters(): Upcasters {
  return new Upcasters()
    .upcast<Omit<UserRegistered['data'], 'registeredAt'> & { registeredAt?: string }, UserRegistered['data']>(
      'UserRegistered',
      1,
      (data, event) => ({ ...data, registeredAt: data.registeredAt ?? event.recordedAt.toISOString() }),
    )
    .rename('UserEmailChanged', 1, 'EmailChanged');
}

const isoTime = z.string().max(40);
const passwordHash = z.object({
  algorithm: z.literal('scrypt'),
  salt: z.string().max(200),
  hash: z.string().max(200),
  N: z.number().int().positive(),
  r: z.number().int().positive(),
  p: z.number().int().positive(),
  keyLength: z.number().int().positive(),
});
const userId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'a user id is 1–64 characters of A–Z, a–z, 0–9, _ or -');
const version = z.number().int().min(0);
/** `VersionPrecondition`: a version, the versions a client accepts, or 'exists'. */
const precondition = z.union([version, z.array(version).max(100), z.literal("exists")]);

/** Every event the example stores, as zod schemas: appends of anything else are refused. */
export const userEventSchemas = defineSchemas({
  UserRegistered: z.object({ userName: z.string().max(64), email: z.string().max(254), password: passwordHash, registeredAt: isoTime }),
  PasswordChanged: z.object({ password: passwordHash, changedAt: isoTime }),
  EmailChanged: z.object({ email: z.string().max(254), changedAt: isoTime }),
  UserRenamed: z.object({ userName: z.string().max(64), previousUserName: z.string().max(64), renamedAt: isoTime }),
  UserDeactivated: z.object({ reason: z.string().max(200), deactivatedAt: isoTime }),
  UserForgotten: z.object({ forgottenAt: isoTime }),
  UserNameReserved: z.object({ userId }),
  UserNameReleased: z.object({ userId }),
  // The welcome-mails process manager's record (see welcome.ts).
  WelcomeSent: z.object({ userId, userName: z.string().max(64), commandId: z.string().max(200) }),
});

/**
 * The commands' shapes. The domain still checks its rules (a valid email, a strong password);
 * these schemas stop malformed input at the door with the issues by path.
 */
export const userCommandSchemas = defineSchemas({
  RegisterUser: z.object({ userId, userName: z.string().min(1).max(64), email: z.string().min(1).max(254), password: z.string().min(1).max(1024) }),
  ChangePassword: z.object({ userId, newPassword: z.string().min(1).max(1024), originalVersion: precondition }),
  ChangeEmail: z.object({ userId, email: z.string().min(1).max(254), originalVersion: precondition }),
  RenameUser: z.object({ userId, userName: z.string().min(1).max(64), originalVersion: precondition }),
  DeactivateUser: z.object({ userId, reason: z.string().max(200), originalVersion: precondition.optional() }),
  ForgetUser: z.object({ userId }),
});
export type UserCommand = CommandsFromSchemas<typeof userCommandSchemas>;

/** The layers over a raw store, and what the app needs from them. */
export interface EvolvedStore {
  /** Validation, tombstones, upcasting and encryption over the raw store; reads see plain current shapes. */
  readonly store: EventStore;
  /** The store underneath, as stored (encrypted emails): for its database handle, not for reading users. */
  readonly raw: EventStore;
  /** Write through this store so idempotent commands reserve their id in the same append. */
  readonly idempotency: IdempotentCommands;
  /** Shreds a user's email everywhere by deleting the user's key. */
  forget(userId: string): Promise<void>;
  /** Snapshots of user state encrypted with the user's key (ignored once the user is forgotten). */
  snapshots(inner: SnapshotStore): SnapshotStore;
  /** The projection for an inline hook on the raw store: it sees decrypted events. */
  inline<Ctx>(projection: Projection<UserEvent, Ctx>): Projection<UserEvent, Ctx>;
  /** An async runner that reads through the layers and writes with the adapter's target and lock. */
  runner<Ctx>(
    projection: Projection<UserEvent, Ctx>,
    parts: { target: ProjectionTarget<Ctx>; lock: ProjectionLock; wakeUps?: WakeUpSource },
    settings?: ProjectionRunnerSettings,
  ): ProjectionRunner<UserEvent, Ctx>;
}

export function evolveStore(raw: EventStore, keys: KeyStore): EvolvedStore {
  const layers = layerEventStore<UserEvent>(raw, {
    schemas: userEventSchemas,
    upcasters: userUpcasters(),
    personalData: { keys, policy: userPersonalData },
  });
  const privacy = layers.privacy!;
  const idempotency = new IdempotentCommands(layers.store, {
    // Only a hash of this is stored; the email and the password stay out of it.
    fingerprint: (command) => {
      const { password: _p, newPassword: _n, email: _e, ...rest } = command.data as Record<string, unknown>;
      return { type: command.type, data: rest } as never;
    },
  });
  return {
    store: idempotency.store,
    raw,
    idempotency,
    forget: (id) => privacy.forget(id),
    snapshots: (inner) =>
      new EncryptedSnapshotStore(inner, keys, (streamId) => (streamId.startsWith(USER_STREAM_PREFIX) ? userIdOf(streamId) : undefined)),
    inline: (projection) => privacy.inlineProjection(projection),
    runner: (projection, parts, settings = {}) =>
      new ProjectionRunner({ ...settings, store: layers.store, projection, ...parts }),
  };
}

/** Command bus middleware of the example: schema validation first, then idempotency (where wired). */
export function commandMiddleware(evolved: EvolvedStore | undefined) {
  const validation = validateCommands(userCommandSchemas);
  return evolved === undefined ? [validation] : [validation, evolved.idempotency.middleware()];
}
