/**
 * The user-details example as a narrated script: register a user, change the password, let Bob and
 * Alice change it concurrently from the same version, show the history and the state as of
 * version 1, and query the read side. Runs on SQLite by default (a local file, so a second run
 * continues from the stored history), on PostgreSQL when DATABASE_URL is set, or on NATS
 * JetStream when EVENTFOLD_STORE=nats://host:port.
 */
import { InMemoryCheckpointStore, isEventfoldError, type EventStore, type ProjectionProgress } from 'eventfold';
import { startWelcomeMails } from './welcome.js';
import { openInfrastructure } from './infrastructure.js';
import { createUserDetailsApp } from './app.js';

const DEMO_USER = 'alice-0001';
const DEMO_NAME = 'alice';

const say = (text = ''): void => console.log(text);

/** Prints a rebuild's progress as a bar: events done, rate, time left. */
function drawProgress(progress: ProjectionProgress): void {
  if (progress.phase !== 'rebuild') return;
  const width = 30;
  const filled = Math.round(progress.ratio * width);
  const left = progress.estimatedMsLeft === undefined ? '' : `, ~${(progress.estimatedMsLeft / 1000).toFixed(1)}s left`;
  const line = `  [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${progress.processed} events, ${Math.round(progress.eventsPerSecond)}/s${left}`;
  if (process.stdout.isTTY) process.stdout.write(`\r${line}${progress.done ? '\n' : ''}`);
  else if (progress.done) say(line);
}
const step = (title: string): void => say(`\n== ${title}`);

async function main(): Promise<void> {
  const infrastructure = await openInfrastructure();
  say(`eventfold user-details example — events stored in ${infrastructure.description}`);
  const app = await createUserDetailsApp(infrastructure, { projection: 'async', onProjectionProgress: drawProgress });
  try {
    const { commands, queries } = app;

    step('1. Register a user');
    const existing = await app.write.users.find(DEMO_USER);
    let version: number;
    if (existing === undefined) {
      const registered = await commands.dispatch({
        type: 'RegisterUser',
        data: { userId: DEMO_USER, userName: DEMO_NAME, email: 'alice@example.com', password: 'correct horse battery' },
      });
      version = registered.version;
      say(`RegisterUser → UserRegistered; '${DEMO_USER}' is at version ${version}.`);
      say('The password is stored only as a salted scrypt hash; the event never holds it in clear.');
    } else {
      version = existing.version;
      say(`'${DEMO_USER}' already exists from an earlier run, at version ${version}: continuing its history.`);
    }

    step('2. Try to register the same user name again (unique user names)');
    try {
      await commands.dispatch({
        type: 'RegisterUser',
        data: { userId: `mallory-${Date.now()}`, userName: 'ALICE', email: 'mallory@example.com', password: 'not alice at all' },
      });
      say('Unexpected: the duplicate name was accepted.');
    } catch (error) {
      say(`Refused: ${(error as Error).message}`);
    }

    step('3. Change the password');
    const changed = await commands.dispatch({
      type: 'ChangePassword',
      data: { userId: DEMO_USER, newPassword: `tr0ub4dor&3-${version}`, originalVersion: version },
    });
    say(`PasswordChanged; version ${version} → ${changed.version}.`);
    version = changed.version;

    step(`4. Bob and Alice both change the password, both from version ${version}`);
    const [bob, alice] = await Promise.allSettled([
      commands.dispatch({ type: 'ChangePassword', data: { userId: DEMO_USER, newPassword: 'bob-says-hello', originalVersion: version } }),
      commands.dispatch({ type: 'ChangePassword', data: { userId: DEMO_USER, newPassword: 'alice-says-hi!', originalVersion: version } }),
    ]);
    for (const [who, outcome] of [['Bob', bob], ['Alice', alice]] as const) {
      if (outcome.status === 'fulfilled') {
        say(`${who}: saved, the user is now at version ${outcome.value.version}.`);
        version = outcome.value.version;
      } else if (isEventfoldError(outcome.reason, 'CONCURRENCY_CONFLICT')) {
        // By code, not class: the store and the command's own early check report it alike.
        const error = outcome.reason as unknown as { expectedVersion: unknown; actualVersion: number };
        say(`${who}: ConcurrencyError — expected version ${String(error.expectedVersion)}, actual version ${error.actualVersion}. Nothing was overwritten; ${who} must reload and retry.`);
      } else {
        throw outcome.reason;
      }
    }

    step("5. The user's full history (state is a left fold over these events)");
    for await (const event of infrastructure.store.readStream(app.write.users.streamIdOf(DEMO_USER))) {
      const data = { ...(event.data as Record<string, unknown>) };
      if ('password' in data) data['password'] = '<scrypt hash>';
      say(`  v${event.version}  #${event.position}  ${event.recordedAt.toISOString()}  ${event.type} ${JSON.stringify(data)}`);
    }

    step('6. Time travel: the state as of version 1');
    const atOne = await app.write.users.load(DEMO_USER, { version: 1 });
    const now = await app.write.users.load(DEMO_USER);
    say(`As of version 1: user name '${atOne.userName}', email ${atOne.email}, status ${atOne.status}, password hash ${atOne.password.hash.slice(0, 12)}…`);
    say(`Now (version ${now.version}): password hash ${now.password.hash.slice(0, 12)}… — changed ${now.version - 1} time(s) since.`);

    step('7. The query side: the users read model (kept by an async projection from the global log)');
    await app.readSide.caughtUp();
    const page = await queries.execute({ type: 'ListUsers', params: { limit: 10, offset: 0 } });
    say(`${page.total} user(s) in the read model (first ${page.users.length}):`);
    for (const user of page.users) {
      say(`  ${user.id}  ${user.userName}  ${user.email}  ${user.status}  v${user.version}`);
    }
    const byName = await queries.execute({ type: 'GetUserByName', params: { userName: DEMO_NAME } });
    say(`GetUserByName('${DEMO_NAME}') → ${byName === undefined ? 'not found' : `${byName.id} at version ${byName.version}`}`);

    step('8. Rebuild the read model by replaying the whole log');
    await app.readSide.rebuild();
    const rebuilt = await queries.execute({ type: 'GetUser', params: { userId: DEMO_USER } });
    say(`After the rebuild '${DEMO_USER}' is at version ${rebuilt?.version ?? '?'} in the read model again.`);

    await livingWithEvents(app);
    await welcomeMailsStep(infrastructure.store);
  } finally {
    await app.close();
  }
}

/** A process manager: every registered user gets one welcome mail (see welcome.ts, docs/publishing.md). */
async function welcomeMailsStep(store: EventStore): Promise<void> {
  step('12. A process manager welcomes every registered user, once');
  say('Its checkpoint is kept in memory here, so every run reads the whole log again: users welcomed');
  say('by an earlier run get the same command id again and are found already welcomed.');
  const manager = await startWelcomeMails({
    store,
    checkpoints: new InMemoryCheckpointStore(),
    deliver: (mail) =>
      say(mail.email.includes('@') ? `  mail to ${mail.email}: "Welcome, ${mail.userName}!"` : `  no mail for ${mail.userName}: the address was forgotten`),
  });
  await manager.waitUntilCaughtUp({ timeoutMs: 30_000 });
  await manager.stop();
  const welcomed = await store.readAll({ filter: { types: ['WelcomeSent'] } }).toArray();
  say(`${welcomed.length} user(s) welcomed in all, each exactly once.`);
}

/** Validation, idempotency keys and "forget me" (see evolution.ts and docs/evolution.md, docs/privacy.md). */
async function livingWithEvents(app: Awaited<ReturnType<typeof createUserDetailsApp>>): Promise<void> {
  const { commands, queries } = app;
  step('9. A malformed command is refused by its schema before anything runs');
  try {
    await commands.dispatch({ type: 'RegisterUser', data: { userId: 'not valid!', userName: 'x', email: 'x', password: 'x' } });
  } catch (error) {
    say(`${(error as Error).name}: ${(error as Error).message}`);
  }

  step('10. The same command twice with one id (a retried request): it acts once, answers the same');
  const guest = `guest-${Date.now().toString(36)}`;
  const register = {
    type: 'RegisterUser' as const,
    commandId: `register-${guest}`,
    data: { userId: guest, userName: guest, email: `${guest}@example.com`, password: 'guest password 1' },
  };
  const first = await commands.dispatch(register);
  const again = await commands.dispatch(register);
  say(`First: ${JSON.stringify(first)}; repeat: ${JSON.stringify(again)}; the user is at version ${(await app.write.users.load(guest)).version}.`);

  step(`11. '${guest}' asks to be forgotten: the key of the email is deleted, the history stays`);
  await commands.dispatch({ type: 'ForgetUser', data: { userId: guest } });
  const history = await queries.execute({ type: 'GetUserHistory', params: { userId: guest } });
  for (const entry of history ?? []) say(`  v${entry.version}  ${entry.type}  email: ${String(entry.data['email'] ?? '-')}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
