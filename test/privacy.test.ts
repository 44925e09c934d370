import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Aggregate,
  CryptoShreddingEventStore,
  DerivedKeyStore,
  hmacKeyDerivation,
  InMemoryEventStore,
  DecryptionFailedError,
  definePersonalData,
  EncryptedSnapshotStore,
  EncryptionKeyMissingError,
  InMemoryKeyStore,
  InvalidArgumentError,
  InMemoryProjectionRunner,
  addInlineProjection,
  InMemoryReadModel,
  InMemorySnapshotStore,
  defineProjection,
  isEventfoldError,
  layerEventStore,
  Repository,
  SubjectForgottenError,
  Upcasters,
  type Event,
  type InMemoryProjectionContext,
  type KeyStore,
} from '../src/index.js';
import { NatsKeyStore } from '../src/nats/index.js';
import { PostgresKeyStore } from '../src/postgres/index.js';
import { SqliteKeyStore } from '../src/sqlite/index.js';
import { evolutionStoreKinds, pgTestDatabase, sqliteTempDir, type StoreKind } from './fixtures/evolution-stores.js';
import { failure } from './support/failure.js';
import { natsStores } from './support/nats.js';

const nats = natsStores('privacy');
const natsConnections: { close(): Promise<void> }[] = [];
/** The evolution stores (NATS JetStream among them, with its KV key store). */
const kinds: StoreKind[] = evolutionStoreKinds();
const temp = sqliteTempDir('eventfold-keys-');
const pg = pgTestDatabase({ max: 4 });
afterAll(async () => {
  temp.cleanup();
  await pg.cleanup();
  for (const store of natsConnections) await store.close();
  await nats.cleanup();
});

type UserEvent =
  | Event<'UserRegistered', { userId: string; email: string; profile: { phone: string; city: string } }>
  | Event<'EmailChanged', { userId: string; email: string }>
  | Event<'UserForgotten', { userId: string }>;

const policy = definePersonalData<UserEvent>({
  UserRegistered: { subject: (d) => d.userId, fields: ['email', 'profile.phone'], redacted: '[forgotten]' },
  EmailChanged: { subject: (d) => d.userId, fields: ['email'] },
});

class User extends Aggregate<UserEvent> {
  email: string | null = null;
  phone: string | null = null;
  changes = 0;
  protected apply(event: UserEvent): void {
    this.changes++;
    if (event.type === 'UserRegistered') {
      this.email = event.data.email;
      this.phone = event.data.profile.phone;
    } else if (event.type === 'EmailChanged') this.email = event.data.email;
  }
  toSnapshot() {
    return { email: this.email, phone: this.phone, changes: this.changes };
  }
  restoreSnapshot(state: { email: string | null; phone: string | null; changes: number }) {
    Object.assign(this, state);
  }
}

let keyFiles = 0;
async function keyStoreFor(kind: string): Promise<{ keys: KeyStore; reopen: () => Promise<KeyStore> }> {
  if (kind === 'sqlite') {
    const path = temp.file(`keys-${++keyFiles}.db`);
    return { keys: new SqliteKeyStore({ path }), reopen: async () => new SqliteKeyStore({ path }) };
  }
  if (kind === 'postgres') {
    const schema = pg.schema('keys');
    return { keys: await PostgresKeyStore.create({ pool: pg.pool, schema }), reopen: () => PostgresKeyStore.create({ pool: pg.pool, schema }) };
  }
  if (kind === 'nats') {
    // The store only lends its connection; it is closed after the tests.
    const store = await nats.create();
    natsConnections.push(store);
    const bucket = nats.bucket('keys');
    return { keys: await NatsKeyStore.create({ connection: store.connection, bucket }), reopen: () => NatsKeyStore.create({ connection: store.connection, bucket }) };
  }
  const keys = new InMemoryKeyStore();
  return { keys, reopen: async () => keys };
}

const ada = { userId: 'u-ada', email: 'ada@example.com', profile: { phone: '+44 1234', city: 'London' } };

describe.each(kinds)('crypto-shredding on the $name store', (kind) => {
  async function setup() {
    const inner = await (await kind.fresh()).open();
    const { keys, reopen } = await keyStoreFor(kind.name);
    const { store, privacy } = layerEventStore<UserEvent>(inner, { personalData: { keys, policy }, upcasters: new Upcasters() });
    await store.append('user-u-ada', [{ type: 'UserRegistered', data: ada }], { expectedVersion: 'no-stream' });
    await store.append('user-u-ada', [{ type: 'EmailChanged', data: { userId: 'u-ada', email: 'ada@lovelace.org' } }], { expectedVersion: 1 });
    await store.append('user-u-bob', [{ type: 'UserRegistered', data: { ...ada, userId: 'u-bob', email: 'bob@example.com' } }], {
      expectedVersion: 'no-stream',
    });
    return { inner, keys, reopen, store, privacy: privacy! };
  }

  it('stores personal fields encrypted, with a fresh IV per value, and reads them decrypted', async () => {
    const { inner, store } = await setup();
    const raw = await inner.readAll().toArray();
    const text = JSON.stringify(raw);
    for (const secret of ['ada@example.com', 'ada@lovelace.org', '+44 1234', 'bob@example.com']) expect(text).not.toContain(secret);
    expect(text).toContain('London');
    expect(raw[0]!.metadata['$personal']).toEqual(['email', 'profile.phone']);
    const ivs = raw.flatMap((e) => Object.values(e.data as object).concat(Object.values((e.data as { profile?: object }).profile ?? {})));
    const envelopes = ivs.filter((v): v is { iv: string } => typeof v === 'object' && v !== null && 'iv' in v).map((v) => v.iv);
    expect(envelopes.length).toBe(5);
    expect(new Set(envelopes).size).toBe(5);
    const read = await store.readStream('user-u-ada').toArray();
    expect(read.map((e) => e.data)).toEqual([ada, { userId: 'u-ada', email: 'ada@lovelace.org' }]);
  });

  it('forget(subject) redacts on every read path; history, versions and positions stay', async () => {
    const { inner, store, privacy } = await setup();
    const snapshots = new EncryptedSnapshotStore(new InMemorySnapshotStore(), privacy.keys, (streamId) => streamId.replace(/^user-/, ''));
    const users = new Repository(store, User, { streamPrefix: 'user', snapshots: { store: snapshots, snapshotEvery: 1 } });
    expect((await users.load('u-ada')).email).toBe('ada@lovelace.org'); // takes a snapshot
    expect(JSON.stringify(await new InMemorySnapshotStoreProbe(snapshots).raw('user-u-ada'))).not.toContain('lovelace');
    expect((await snapshots.load('user-u-ada'))?.state).toEqual({ email: 'ada@lovelace.org', phone: '+44 1234', changes: 2 });

    const readModel = new InMemoryReadModel();
    const emails = defineProjection<UserEvent, InMemoryProjectionContext>({
      name: 'emails',
      handlers: {
        UserRegistered: (e, ctx) => ctx.readModel.table<string | null>('emails').set(e.data.userId, e.data.email),
        EmailChanged: (e, ctx) => ctx.readModel.table<string | null>('emails').set(e.data.userId, e.data.email),
      },
      reset: (ctx) => ctx.readModel.table('emails').clear(),
    });
    const runner = new InMemoryProjectionRunner(store, emails, { readModel });
    await runner.start();
    await runner.waitUntilCaughtUp({ timeoutMs: 30_000 });
    expect(readModel.table('emails').get('u-ada')).toBe('ada@lovelace.org');

    const before = await inner.readAll().toArray();
    await privacy.forget('u-ada');

    const all = await store.readAll().toArray();
    expect(all.map((e) => [e.streamId, e.version, e.position, e.eventId])).toEqual(before.map((e) => [e.streamId, e.version, e.position, e.eventId]));
    expect(all[0]!.data).toEqual({ userId: 'u-ada', email: '[forgotten]', profile: { phone: '[forgotten]', city: 'London' } });
    expect(all[0]!.metadata['$redacted']).toEqual(['email', 'profile.phone']);
    expect(all[1]!.data).toEqual({ userId: 'u-ada', email: null });
    expect(all[2]!.data).toMatchObject({ email: 'bob@example.com' }); // other subjects untouched
    expect((await store.readStream('user-u-ada').toArray()).map((e) => e.version)).toEqual([1, 2]);

    // The snapshot is ignored (it cannot be decrypted); the history still replays, redacted.
    expect(await snapshots.load('user-u-ada')).toBeUndefined();
    const user = await users.load('u-ada');
    expect([user.email, user.phone, user.changes, user.version]).toEqual([null, '[forgotten]', 2, 2]);
    expect((await users.load('u-ada', { version: 1 })).email).toBe('[forgotten]');

    await runner.rebuild({ timeoutMs: 30_000 });
    await runner.stop();
    expect(readModel.table('emails').get('u-ada')).toBeNull();
    expect(readModel.table('emails').get('u-bob')).toBe('bob@example.com');

    // No new personal data for a forgotten subject; events without personal fields still go in.
    const head = await inner.headPosition();
    await expect(
      store.append('user-u-ada', [{ type: 'EmailChanged', data: { userId: 'u-ada', email: 'again@example.com' } }], { expectedVersion: 2 }),
    ).rejects.toBeInstanceOf(SubjectForgottenError);
    expect(await inner.headPosition()).toBe(head);
    await store.append('user-u-ada', [{ type: 'UserForgotten', data: { userId: 'u-ada' } }], { expectedVersion: 2 });
  });

  it('a lost or wrong key store is a clear error that never shows a key', async () => {
    const { inner, keys } = await setup();
    const adaKey = (await keys.lookup(['u-ada'])).get('u-ada');
    expect(adaKey?.status).toBe('active');
    const keyText = adaKey?.status === 'active' ? [adaKey.key.toString('base64'), adaKey.key.toString('hex')] : [];

    const lost = new CryptoShreddingEventStore(inner, new InMemoryKeyStore(), policy);
    const missing = await failure<unknown>(() => lost.readStream('user-u-ada').toArray());
    expect(missing).toBeInstanceOf(EncryptionKeyMissingError);
    expect((missing as EncryptionKeyMissingError).subjectId).toBe('u-ada');

    const otherKeys = new InMemoryKeyStore();
    await otherKeys.keyFor('u-ada');
    const wrong = await failure<unknown>(() => new CryptoShreddingEventStore(inner, otherKeys, policy).readAll().toArray());
    expect(isEventfoldError(wrong, 'DECRYPTION_FAILED')).toBe(true);
    expect((wrong as DecryptionFailedError).cause).toBeUndefined();
    for (const error of [missing, wrong]) {
      const shown = `${(error as Error).message} ${JSON.stringify(error)} ${(error as Error).stack ?? ''}`;
      for (const k of keyText) expect(shown).not.toContain(k);
    }
  });

  it('never trusts data or metadata that claim to be encrypted already', async () => {
    const { inner, store } = await setup();
    const fake = { $pii: 1, s: 'u-ada', iv: 'AAAAAAAAAAAAAAAA', d: 'AAAAAAAAAAAAAAAAAAAAAAAA' };
    await store.append('user-u-eve', [{ type: 'UserRegistered', data: { ...ada, userId: 'u-eve', email: 'eve@example.com' }, metadata: { $personal: [] } }], {
      expectedVersion: 'no-stream',
    });
    await store.append('note-1', [{ type: 'Note', data: { text: fake }, metadata: { $personal: ['text'] } }], { expectedVersion: 'no-stream' });
    const raw = await inner.readAll().toArray();
    expect(JSON.stringify(raw)).not.toContain('eve@example.com');
    expect(raw[raw.length - 1]!.metadata).not.toHaveProperty('$personal');
    // The look-alike is left as data: reading does not fail.
    expect((await store.readStream('note-1').toArray())[0]!.data).toEqual({ text: fake });
  });

  it('an envelope moved to another field does not decrypt', async () => {
    const { inner, keys } = await setup();
    const [registered] = await inner.readStream('user-u-ada').toArray();
    const data = registered!.data as { email: unknown; profile: { phone: unknown } };
    await inner.append(
      'tampered',
      [{ type: 'UserRegistered', data: { userId: 'u-ada', email: data.profile.phone, profile: { phone: data.email, city: 'x' } }, metadata: { $personal: ['email'] } }],
      { expectedVersion: 'no-stream' },
    );
    const reader = new CryptoShreddingEventStore(inner, keys, policy);
    await expect(reader.readStream('tampered').toArray()).rejects.toBeInstanceOf(DecryptionFailedError);
  });

  it('the key store keeps one key per subject and forgetting is for good', async () => {
    const { keys, reopen } = await keyStoreFor(kind.name);
    const [a, b] = await Promise.all([keys.keyFor('s1'), keys.keyFor('s1')]);
    expect(a.equals(b)).toBe(true);
    expect(a.length).toBe(32);
    expect((await keys.lookup(['s1', 'unknown'])).has('unknown')).toBe(false);
    await keys.forget('s1');
    await keys.forget('never-seen');
    const again = await reopen();
    expect((await again.lookup(['s1', 'never-seen'])).get('s1')?.status).toBe('forgotten');
    expect((await again.lookup(['never-seen'])).get('never-seen')?.status).toBe('forgotten');
    await expect(again.keyFor('s1')).rejects.toBeInstanceOf(SubjectForgottenError);
    await expect(again.keyFor('never-seen')).rejects.toBeInstanceOf(SubjectForgottenError);
  });

  it('refuses a subject id with a lone surrogate: stored as UTF-8 it would share the key of its U+FFFD twin', async () => {
    const { keys } = await keyStoreFor(kind.name);
    const twin = await keys.keyFor('u-\uFFFD');
    await expect(keys.keyFor('u-\uD800')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(keys.forget('u-\uD800')).rejects.toBeInstanceOf(InvalidArgumentError);
    expect((await keys.lookup(['u-\uD800'])).has('u-\uD800')).toBe(false);
    expect((await keys.lookup(['u-\uFFFD'])).get('u-\uFFFD')).toEqual({ status: 'active', key: twin });
    // Through the store: the append is refused and nothing is written.
    const inner = await (await kind.fresh()).open();
    const { store } = layerEventStore<UserEvent>(inner, { personalData: { keys, policy }, upcasters: new Upcasters() });
    const stream = `user-lone-${Math.random()}`;
    const error = await failure(() => store.append(stream, [{ type: 'UserRegistered', data: { ...ada, userId: 'u-\uD800' } }], { expectedVersion: 'no-stream' }));
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect(await store.streamVersion(stream)).toBe(0);
  });
});

describe('inline projections on the raw store', () => {
  it('see decrypted events through inlineProjection, handlers and `any` alike', async () => {
    const raw = new InMemoryEventStore();
    const store = new CryptoShreddingEventStore(raw, new InMemoryKeyStore(), policy);
    const readModel = new InMemoryReadModel();
    const seen: unknown[] = [];
    const projection = defineProjection<UserEvent, InMemoryProjectionContext>({
      name: 'inline-emails',
      handlers: { UserRegistered: (e, ctx) => ctx.readModel.table<string>('emails').set(e.data.userId, e.data.email) },
      any: (e) => void seen.push((e.data as { email?: unknown }).email),
    });
    addInlineProjection(raw, store.inlineProjection(projection), readModel);
    await store.append('user-u-ada', [{ type: 'UserRegistered', data: ada }], { expectedVersion: 'no-stream' });
    // `any` handles the types without their own handler.
    await store.append('user-u-ada', [{ type: 'EmailChanged', data: { userId: 'u-ada', email: 'ada@lovelace.org' } }], { expectedVersion: 1 });
    expect(readModel.table('emails').get('u-ada')).toBe('ada@example.com');
    expect(seen).toEqual(['ada@lovelace.org']);
    // Without the wrapper, an inline projection would see the envelope.
    expect(JSON.stringify((await raw.readAll().toArray())[0]!.data)).not.toContain('ada@example.com');
  });
});

describe('DerivedKeyStore (a KMS behind the key store)', () => {
  it('derives data keys from stored material: the key store alone decrypts nothing', async () => {
    const material = new InMemoryKeyStore();
    const master = Buffer.alloc(32, 7);
    const keys = new DerivedKeyStore(material, hmacKeyDerivation(master));
    const inner = new InMemoryEventStore();
    const store = new CryptoShreddingEventStore(inner, keys, policy);
    await store.append('user-u-ada', [{ type: 'UserRegistered', data: ada }], { expectedVersion: 'no-stream' });
    expect((await store.readStream('user-u-ada').toArray())[0]!.data).toEqual(ada);
    // The stored material is not the data key: read with it directly, decryption fails.
    await expect(new CryptoShreddingEventStore(inner, material, policy).readAll().toArray()).rejects.toBeInstanceOf(DecryptionFailedError);
    // Another master key derives other keys.
    const otherMaster = new DerivedKeyStore(material, hmacKeyDerivation(Buffer.alloc(32, 8)));
    await expect(new CryptoShreddingEventStore(inner, otherMaster, policy).readAll().toArray()).rejects.toBeInstanceOf(DecryptionFailedError);
    await keys.forget('u-ada');
    expect((await store.readStream('user-u-ada').toArray())[0]!.data).toMatchObject({ email: '[forgotten]' });
    expect(() => hmacKeyDerivation(Buffer.alloc(8))).toThrow(/at least 32 bytes/);
  });
});

describe('SqliteKeyStore files', () => {
  it('after forget, the key bytes are in neither the database file nor its WAL', async () => {
    const dir = sqliteTempDir('eventfold-keyfile-');
    try {
      const keys = new SqliteKeyStore({ path: join(dir.dir, 'keys.db') });
      for (let i = 0; i < 20; i++) await keys.keyFor(`other-${i}`);
      const key = Buffer.from(await keys.keyFor('victim'));
      const files = () => readdirSync(dir.dir).map((f) => readFileSync(join(dir.dir, f)));
      expect(files().some((content) => content.includes(key))).toBe(true);
      await keys.forget('victim');
      expect(keys.clearWal()).toBe(true);
      expect(files().some((content) => content.includes(key))).toBe(false);
      expect((await keys.lookup(['other-3'])).get('other-3')?.status).toBe('active');
      await keys.close();
    } finally {
      dir.cleanup();
    }
  });
});

/** Reads what the wrapped snapshot store holds, bypassing decryption. */
class InMemorySnapshotStoreProbe {
  constructor(private readonly encrypted: EncryptedSnapshotStore) {}
  raw(streamId: string) {
    return (this.encrypted as unknown as { inner: InMemorySnapshotStore }).inner.load(streamId);
  }
}

