/**
 * The core benchmark. Everything runs in this one process and run, and is reported as
 * ratios against a hand-written baseline measured alongside:
 * - W1: 10,000 users × (register + 9 password changes) through CommandBus → Repository →
 *   InMemoryEventStore, beside a Map of arrays with async load-fold-append functions.
 * - W2: rehydrating one 100,000-event aggregate with Repository.load, beside a plain fold of an
 *   array; and the same load with `snapshotEvery: 100`.
 */
import {
  Aggregate,
  assertNever,
  CommandBus,
  ConcurrencyError,
  InMemoryEventStore,
  InMemorySnapshotStore,
  InvalidOperationError,
  Repository,
  type AnyEvent,
  type Command,
  type Event,
  type Snapshottable,
} from '../src/index.js';
import { compare, formatNumber, measure, printTable, type Row } from './support/measure.js';

const USERS = 10_000;
const CHANGES_PER_USER = 9;
const COMMANDS = USERS * (1 + CHANGES_PER_USER);
const LONG_STREAM = 100_000;
// A constant stand-in for an scrypt hash, so hashing is not what is measured.
const HASH = 'scrypt$N=16384,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA';

// ---- the User aggregate ----------------------------------------------------------------------

type UserRegistered = Event<'UserRegistered', { userId: string; name: string; email: string; passwordHash: string }>;
type PasswordChanged = Event<'PasswordChanged', { passwordHash: string }>;
type UserEvent = UserRegistered | PasswordChanged;
interface UserState {
  name: string;
  email: string;
  passwordHash: string;
  passwordChanges: number;
}

class User extends Aggregate<UserEvent> implements Snapshottable<UserState> {
  private state: UserState = { name: '', email: '', passwordHash: '', passwordChanges: 0 };

  register(name: string, email: string, passwordHash: string): void {
    if (this.version > 0) throw new InvalidOperationError(`user ${this.id} is already registered`);
    this.raise('UserRegistered', { userId: this.id, name, email, passwordHash });
  }

  changePassword(passwordHash: string): void {
    if (this.version === 0) throw new InvalidOperationError(`user ${this.id} does not exist`);
    this.raise('PasswordChanged', { passwordHash });
  }

  get passwordChanges(): number {
    return this.state.passwordChanges;
  }

  protected apply(event: UserEvent): void {
    switch (event.type) {
      case 'UserRegistered':
        this.state = { name: event.data.name, email: event.data.email, passwordHash: event.data.passwordHash, passwordChanges: 0 };
        break;
      case 'PasswordChanged':
        this.state = { ...this.state, passwordHash: event.data.passwordHash, passwordChanges: this.state.passwordChanges + 1 };
        break;
      default:
        assertNever(event);
    }
  }

  toSnapshot(): UserState {
    return this.state;
  }

  restoreSnapshot(state: UserState): void {
    this.state = { ...state };
  }
}

type RegisterUser = Command<'RegisterUser', { userId: string; name: string; email: string; passwordHash: string }>;
type ChangePassword = Command<'ChangePassword', { userId: string; passwordHash: string }>;

function eventfoldApp(store: InMemoryEventStore) {
  const users = new Repository(store, User, { streamPrefix: 'user' });
  const bus = new CommandBus()
    .register('RegisterUser', async (c: RegisterUser, ctx) => {
      const user = new User(c.data.userId);
      user.register(c.data.name, c.data.email, c.data.passwordHash);
      await users.save(user, { metadata: ctx.metadata });
    })
    .register('ChangePassword', async (c: ChangePassword, ctx) => {
      await users.update(c.data.userId, (user) => user.changePassword(c.data.passwordHash), { metadata: ctx.metadata });
    });
  return { bus, users };
}

// ---- the hand-written baseline: a Map of arrays, load-fold-append ----------------------------

interface BaselineEvent {
  readonly type: string;
  readonly data: { readonly passwordHash: string; readonly name?: string; readonly email?: string };
}

function baselineFold(events: readonly BaselineEvent[]): UserState | undefined {
  let state: UserState | undefined;
  for (const e of events) {
    if (e.type === 'UserRegistered') {
      state = { name: e.data.name!, email: e.data.email!, passwordHash: e.data.passwordHash, passwordChanges: 0 };
    } else if (state !== undefined) {
      state = { ...state, passwordHash: e.data.passwordHash, passwordChanges: state.passwordChanges + 1 };
    }
  }
  return state;
}

class Baseline {
  readonly streams = new Map<string, BaselineEvent[]>();

  async load(id: string): Promise<readonly BaselineEvent[]> {
    return this.streams.get(id) ?? [];
  }

  async append(id: string, expectedVersion: number, events: readonly BaselineEvent[]): Promise<void> {
    const stream = this.streams.get(id) ?? [];
    if (stream.length !== expectedVersion) throw new ConcurrencyError(id, expectedVersion, stream.length);
    if (stream.length === 0) this.streams.set(id, stream);
    stream.push(...events);
  }

  async register(userId: string, name: string, email: string, passwordHash: string): Promise<void> {
    const events = await this.load(userId);
    if (baselineFold(events) !== undefined) throw new Error('already registered');
    await this.append(userId, events.length, [{ type: 'UserRegistered', data: { name, email, passwordHash } }]);
  }

  async changePassword(userId: string, passwordHash: string): Promise<void> {
    const events = await this.load(userId);
    if (baselineFold(events) === undefined) throw new Error('no such user');
    await this.append(userId, events.length, [{ type: 'PasswordChanged', data: { passwordHash } }]);
  }
}

// ---- W1 --------------------------------------------------------------------------------------

async function eventfoldW1(bus: ReturnType<typeof eventfoldApp>['bus']): Promise<void> {
  for (let u = 0; u < USERS; u++) {
    const userId = `u${u}`;
    await bus.dispatch({
      type: 'RegisterUser',
      data: { userId, name: `User ${u}`, email: `user${u}@example.com`, passwordHash: HASH },
    });
    for (let c = 0; c < CHANGES_PER_USER; c++) {
      await bus.dispatch({ type: 'ChangePassword', data: { userId, passwordHash: HASH } });
    }
  }
}

async function baselineW1(baseline: Baseline): Promise<void> {
  for (let u = 0; u < USERS; u++) {
    const userId = `u${u}`;
    await baseline.register(userId, `User ${u}`, `user${u}@example.com`, HASH);
    for (let c = 0; c < CHANGES_PER_USER; c++) await baseline.changePassword(userId, HASH);
  }
}

/** W1 for both sides, alternating runs; returns commands per second (eventfold, baseline). */
async function w1(): Promise<{ eventfoldCps: number; baselineCps: number }> {
  // Sanity first: the workload really does what it says on both sides.
  const app = eventfoldApp(new InMemoryEventStore());
  await eventfoldW1(app.bus);
  const sample = await app.users.load('u0');
  if (sample.version !== 1 + CHANGES_PER_USER || sample.passwordChanges !== CHANGES_PER_USER) {
    throw new Error('W1 eventfold sanity check failed');
  }
  const base = new Baseline();
  await baselineW1(base);
  if (baselineFold(base.streams.get('u0') ?? [])?.passwordChanges !== CHANGES_PER_USER) {
    throw new Error('W1 baseline sanity check failed');
  }

  const { a, b } = await compare(
    { prepare: () => eventfoldApp(new InMemoryEventStore()).bus, run: eventfoldW1 },
    { prepare: () => new Baseline(), run: baselineW1 },
    { warmup: 1, repeats: 5 },
  );
  return { eventfoldCps: COMMANDS / (a.medianMs / 1000), baselineCps: COMMANDS / (b.medianMs / 1000) };
}

// ---- W2 --------------------------------------------------------------------------------------

function longHistory(): AnyEvent[] {
  const events: AnyEvent[] = [{ type: 'UserRegistered', data: { userId: 'long', name: 'Long', email: 'l@x', passwordHash: HASH } }];
  for (let i = 1; i < LONG_STREAM; i++) events.push({ type: 'PasswordChanged', data: { passwordHash: HASH } });
  return events;
}

async function fillStore(store: InMemoryEventStore, events: readonly AnyEvent[]): Promise<void> {
  for (let i = 0; i < events.length; i += 10_000) {
    await store.append('user-long', events.slice(i, i + 10_000), { expectedVersion: i });
  }
}

async function w2(): Promise<{ loadMs: number; baselineMs: number; snapshotMs: number }> {
  const history = longHistory();

  const store = new InMemoryEventStore();
  await fillStore(store, history);
  const plain = new Repository(store, User, { streamPrefix: 'user' });
  const array = history as unknown as BaselineEvent[];
  const { a: load, b: baseline } = await compare(
    {
      prepare: () => undefined,
      run: async () => {
        const user = await plain.load('long');
        if (user.version !== LONG_STREAM || user.passwordChanges !== LONG_STREAM - 1) throw new Error('W2 load sanity');
      },
    },
    {
      prepare: () => undefined,
      run: () => {
        const state = baselineFold(array);
        if (state?.passwordChanges !== LONG_STREAM - 1) throw new Error('W2 baseline sanity');
      },
    },
    { warmup: 3, repeats: 9 },
  );

  const snapshotStore = new InMemorySnapshotStore();
  const snapshotted = new Repository(store, User, {
    streamPrefix: 'user',
    snapshots: { store: snapshotStore, snapshotEvery: 100 },
  });
  await snapshotted.load('long'); // the first load folds everything and takes the snapshot
  const withSnapshot = await measure(
    () => undefined,
    async () => {
      const user = await snapshotted.load('long');
      if (user.version !== LONG_STREAM || user.passwordChanges !== LONG_STREAM - 1) throw new Error('W2 snapshot sanity');
    },
    { warmup: 50, repeats: 201 },
  );

  return { loadMs: load.medianMs, baselineMs: baseline.medianMs, snapshotMs: withSnapshot.medianMs };
}

// ---- report ----------------------------------------------------------------------------------

async function main(): Promise<void> {
  const { eventfoldCps, baselineCps } = await w1();
  const { loadMs, baselineMs, snapshotMs } = await w2();

  const w1Ratio = eventfoldCps / baselineCps;
  const w2Ratio = baselineMs / loadMs;
  const snapshotSpeedup = loadMs / snapshotMs;
  const rows: Row[] = [
    {
      workload: `W1: ${USERS.toLocaleString('en-US')} users × (register + ${CHANGES_PER_USER} password changes), commands/s`,
      eventfold: formatNumber(eventfoldCps),
      baseline: formatNumber(baselineCps),
      ratio: `${w1Ratio.toFixed(2)}×`,
      goal: '≥ 0.5× baseline',
      met: w1Ratio >= 0.5,
    },
    {
      workload: `W2: rehydrate ${LONG_STREAM.toLocaleString('en-US')} events, ms (median)`,
      eventfold: formatNumber(loadMs),
      baseline: formatNumber(baselineMs),
      ratio: `${w2Ratio.toFixed(2)}×`,
      goal: '≥ 0.5× baseline speed',
      met: w2Ratio >= 0.5,
    },
    {
      workload: 'W2 with snapshotEvery: 100, ms (median) vs without',
      eventfold: formatNumber(snapshotMs),
      baseline: formatNumber(loadMs),
      ratio: `${formatNumber(snapshotSpeedup)}× faster`,
      goal: '≥ 100× faster',
      met: snapshotSpeedup >= 100,
    },
  ];
  printTable(`core (node ${process.version}, ${process.platform}/${process.arch})`, rows);
}

await main();
