/**
 * A process manager of the example: every registered user gets a welcome mail, once.
 *
 * `UserRegistered` → the `welcome-mails` process manager sends `SendWelcome` (a deterministic
 * command id per event) → its handler records `WelcomeSent` in the user's own `welcome-<userId>`
 * stream, created with `'no-stream'`. A repeat of the command — the process manager crashed after
 * sending it and before its checkpoint moved — finds that stream and stores nothing: the mail is
 * recorded exactly once. The mail itself goes out from the recorded event (here: `deliver`), the
 * outbox pattern: a relay or subscription to `WelcomeSent` would hand it to a mail service.
 */
import {
  CommandBus,
  defineProcessManager,
  isEventfoldError,
  ProcessManager,
  type CheckpointStore,
  type Command,
  type Event,
  type EventStore,
  type WakeUpSource,
} from 'eventfold';
import type { UserEvent } from './domain/user.js';

export type SendWelcome = Command<'SendWelcome', { userId: string; userName: string; email: string }>;
export type WelcomeSent = Event<'WelcomeSent', { userId: string; userName: string; commandId: string }>;

const USER_STREAM_PREFIX = 'user-';

export const welcomeMails = defineProcessManager<UserEvent, SendWelcome>({
  name: 'welcome-mails',
  on: {
    UserRegistered: (event) => [
      {
        type: 'SendWelcome',
        data: { userId: event.streamId.slice(USER_STREAM_PREFIX.length), userName: event.data.userName, email: event.data.email },
      },
    ],
  },
});

/** Records a welcome mail once per user: `'sent'`, or `'already-sent'` for a repeated command. */
export async function recordWelcome(store: EventStore, command: SendWelcome, commandId: string): Promise<'sent' | 'already-sent'> {
  const { userId, userName } = command.data;
  try {
    await store.append(`welcome-${userId}`, [{ type: 'WelcomeSent', data: { userId, userName, commandId } }], { expectedVersion: 'no-stream' });
    return 'sent';
  } catch (error) {
    if (isEventfoldError(error, 'STREAM_ALREADY_EXISTS') || isEventfoldError(error, 'CONCURRENCY_CONFLICT')) return 'already-sent';
    throw error;
  }
}

export interface WelcomeMailsOptions {
  readonly store: EventStore;
  readonly checkpoints: CheckpointStore;
  readonly wakeUps?: WakeUpSource;
  /** Hands the mail to the outside world, once its record is stored. */
  readonly deliver: (mail: { readonly userId: string; readonly userName: string; readonly email: string }) => void;
}

/** Starts the welcome-mails process manager and its command handler; resolves to the manager. */
export async function startWelcomeMails(options: WelcomeMailsOptions): Promise<ProcessManager<UserEvent, SendWelcome>> {
  const commands = new CommandBus().register('SendWelcome', async (command: SendWelcome, context) => {
    if ((await recordWelcome(options.store, command, context.commandId)) === 'sent') options.deliver(command.data);
  });
  const manager = new ProcessManager({
    processManager: welcomeMails,
    store: options.store,
    checkpoints: options.checkpoints,
    ...(options.wakeUps === undefined ? {} : { wakeUps: options.wakeUps }),
    pollIntervalMs: 200,
    dispatch: (command) => commands.dispatch(command),
  });
  await manager.start();
  return manager;
}
