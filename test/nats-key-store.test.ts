import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CryptoShreddingEventStore,
  definePersonalData,
  EncryptionKeyMissingError,
  InvalidArgumentError,
  StoreClosedError,
  StoreCorruptError,
  SubjectForgottenError,
  type Event,
} from '../src/index.js';
import { NatsEventStore, NatsKeyStore, NatsStreamConfigError } from '../src/nats/index.js';
import { startNatsCluster, waitFor, type NatsCluster } from './support/nats-cluster.js';
import { NATS_URL, natsStores } from './support/nats.js';

/**
 * `NatsKeyStore` on the shared server (the key store contract), and on a server of its own whose
 * store directory the test reads byte for byte (forgetting erases the key from the files).
 */
const stores = natsStores('keys');
let nc: NatsConnection;

beforeAll(async () => {
  nc = await connect({ servers: NATS_URL });
});

afterAll(async () => {
  await nc.close();
  await stores.cleanup();
});

async function failure(action: () => Promise<unknown>): Promise<unknown> {
  try {
    await action();
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure');
}

describe('NatsKeyStore', () => {
  it('keeps one key per subject: concurrent first uses, in one process and across instances, agree', async () => {
    const bucket = stores.bucket('one');
    const [a, b] = await Promise.all([NatsKeyStore.create({ connection: nc, bucket }), NatsKeyStore.create({ connection: nc, bucket })]);
    const other = await connect({ servers: NATS_URL });
    try {
      const c = await NatsKeyStore.create({ connection: other, bucket });
      for (let round = 0; round < 5; round++) {
        const subject = `race-${round}`;
        const keys = await Promise.all([a, b, c, a, b, c].map((store) => store.keyFor(subject)));
        expect(keys[0]!.length).toBe(32);
        for (const key of keys) expect(key.equals(keys[0]!)).toBe(true);
      }
      expect((await a.keyFor('race-1')).equals(await c.keyFor('race-2'))).toBe(false);
    } finally {
      await other.close();
    }
  });

  it('lookup, forget and reopen: forgetting is for good, also for a subject never seen', async () => {
    const bucket = stores.bucket('forget');
    const keys = await NatsKeyStore.create({ connection: nc, bucket });
    const s1 = await keys.keyFor('s1');
    await keys.keyFor('s2');
    const found = await keys.lookup(['s1', 'unknown', 's1']);
    expect([...found.keys()]).toEqual(['s1']);
    expect(found.get('s1')).toEqual({ status: 'active', key: s1 });
    const before = Date.now();
    await keys.forget('s1');
    await keys.forget('s1'); // idempotent
    await keys.forget('never-seen');
    await keys.close();

    const again = await NatsKeyStore.create({ connection: nc, bucket });
    const after = await again.lookup(['s1', 'never-seen', 's2']);
    expect(after.get('s1')?.status).toBe('forgotten');
    expect(after.get('never-seen')?.status).toBe('forgotten');
    const forgottenAt = after.get('s1')?.status === 'forgotten' ? (after.get('s1') as { forgottenAt: Date }).forgottenAt : new Date(0);
    expect(forgottenAt.getTime()).toBeGreaterThanOrEqual(before - 1000);
    expect(after.get('s2')?.status).toBe('active');
    await expect(again.keyFor('s1')).rejects.toBeInstanceOf(SubjectForgottenError);
    await expect(again.keyFor('never-seen')).rejects.toBeInstanceOf(SubjectForgottenError);
    // Only the key is gone: the bucket holds the mark as the subject's only revision.
    const kv = await new Kvm(nc).open(bucket);
    const revisions = [];
    for await (const entry of await kv.history({ key: 's.s1' })) revisions.push(entry.string());
    expect(revisions).toHaveLength(1);
    expect(revisions[0]).toMatch(/forgottenAt/);
  });

  it('keyFor racing forget: the subject ends forgotten and no revision with a key is left', async () => {
    const bucket = stores.bucket('raceforget');
    const keys = await NatsKeyStore.create({ connection: nc, bucket });
    const kv = await new Kvm(nc).open(bucket);
    for (let round = 0; round < 10; round++) {
      const subject = `racer-${round}`;
      const outcomes = await Promise.allSettled([keys.keyFor(subject), keys.forget(subject), keys.keyFor(subject), keys.keyFor(subject)]);
      for (const outcome of outcomes) if (outcome.status === 'rejected') expect(outcome.reason).toBeInstanceOf(SubjectForgottenError);
      expect((await keys.lookup([subject])).get(subject)?.status).toBe('forgotten');
      const left = [];
      for await (const entry of await kv.history({ key: `s.${subject}` })) left.push(entry.string());
      expect(left).toHaveLength(1);
      expect(left[0]).toMatch(/forgottenAt/);
    }
  });

  it('a forget interrupted after its mark (before the erase) is finished by the next migrate()', async () => {
    const bucket = stores.bucket('interrupted');
    const keys = await NatsKeyStore.create({ connection: nc, bucket });
    const kv = await new Kvm(nc).open(bucket);
    await keys.keyFor('kept');
    const key = await keys.keyFor('cut-off');
    // What a forget leaves when its process dies between the mark and the erase.
    const entry = (await kv.get('s.cut-off'))!;
    await kv.update('s.cut-off', JSON.stringify({ v: 1, forgottenAt: Date.now() }), entry.revision);
    const revisions = async (name: string) => {
      const left: string[] = [];
      for await (const e of await kv.history({ key: name })) left.push(e.string());
      return left;
    };
    expect(await revisions('s.cut-off')).toHaveLength(2);
    const again = await NatsKeyStore.create({ connection: nc, bucket });
    expect(await revisions('s.cut-off')).toEqual([expect.stringMatching(/forgottenAt/)]);
    expect((await revisions('s.cut-off')).join()).not.toContain(key.toString('base64'));
    expect((await again.lookup(['kept'])).get('kept')?.status).toBe('active');
    expect((await again.lookup(['cut-off'])).get('cut-off')?.status).toBe('forgotten');
    // Nothing left to do: migrate() is one stream info.
    await again.migrate();
  });

  it('hostile subject ids (wildcards, dots, spaces, encodings of each other, look-alikes) get keys of their own', async () => {
    const keys = await NatsKeyStore.create({ connection: nc, bucket: stores.bucket('hostile') });
    const ids = ['*', '>', 'a.*', 'a.>', 'a.b', 'a=2Eb', 'a=3D2Eb', 'a b', 'a\tb', ' ', '.', '..', 'ü', 'u\u0308', '$KV.x.y', 'x'.repeat(200), `${'x'.repeat(199)}.`];
    const issued = await Promise.all(ids.map((id) => keys.keyFor(id)));
    expect(new Set(issued.map((k) => k.toString('hex'))).size).toBe(ids.length);
    await keys.forget('a.b');
    await keys.forget('>');
    const found = await keys.lookup(ids);
    for (const [i, id] of ids.entries()) {
      if (id === 'a.b' || id === '>') expect(found.get(id)?.status).toBe('forgotten');
      else expect(found.get(id)).toEqual({ status: 'active', key: issued[i] });
    }
  });

  it('refuses bad input and calls after close with typed errors', async () => {
    const keys = await NatsKeyStore.create({ connection: nc, bucket: stores.bucket('bad') });
    for (const id of ['', 'x'.repeat(501), 42 as unknown as string]) {
      await expect(keys.keyFor(id)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(keys.forget(id)).rejects.toBeInstanceOf(InvalidArgumentError);
      // Read paths ask about ids taken from stored data: an impossible one is simply unknown.
      expect((await keys.lookup([id, 'unknown'])).size).toBe(0);
    }
    expect(() => new NatsKeyStore({ connection: nc, bucket: 'bad.name' })).toThrow(InvalidArgumentError);
    // A lone surrogate is U+FFFD in UTF-8: such an id must not reach the key of another subject.
    const replacement = await keys.keyFor('a\uFFFD');
    for (const id of ['a\uD800', 'a\uDFFF', '\uDC00a']) {
      await expect(keys.keyFor(id)).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(keys.forget(id)).rejects.toBeInstanceOf(InvalidArgumentError);
      expect((await keys.lookup([id])).size).toBe(0);
    }
    expect((await keys.lookup(['a\uFFFD'])).get('a\uFFFD')).toEqual({ status: 'active', key: replacement });
    // Long ids are keyed by a hash of their UTF-8 too.
    const long = 'x'.repeat(300);
    await keys.keyFor(`${long}\uFFFD`);
    expect((await keys.lookup([`${long}\uD800`])).size).toBe(0);
    await keys.close();
    await expect(keys.keyFor('s')).rejects.toBeInstanceOf(StoreClosedError);
    await expect(keys.lookup(['s'])).rejects.toBeInstanceOf(StoreClosedError);
    await expect(keys.forget('s')).rejects.toBeInstanceOf(StoreClosedError);
  });

  it('refuses a bucket that would drop a key without erasing it', async () => {
    const bucket = stores.bucket('hist1');
    await new Kvm(nc).create(bucket, { history: 1, storage: 'memory' as never });
    const error = await failure(() => NatsKeyStore.create({ connection: nc, bucket, storage: 'memory' }));
    expect(error).toBeInstanceOf(NatsStreamConfigError);
    expect((error as Error).message).toMatch(/revision/);
    // A bucket that republishes its entries would hand every key to its subscribers.
    const republishing = stores.bucket('repub');
    await new Kvm(nc).create(republishing, { history: 8, storage: 'memory' as never, republish: { src: '>', dest: `copies.${republishing}.>` } });
    const leak = await failure(() => NatsKeyStore.create({ connection: nc, bucket: republishing, storage: 'memory' }));
    expect(leak).toBeInstanceOf(NatsStreamConfigError);
    expect((leak as Error).message).toMatch(/republishes/);
  });

  it('a damaged entry is a StoreCorruptError that does not show the stored value, and can still be forgotten', async () => {
    const bucket = stores.bucket('corrupt');
    const keys = await NatsKeyStore.create({ connection: nc, bucket });
    const kv = await new Kvm(nc).open(bucket);
    const secret = Buffer.alloc(31, 9).toString('base64'); // a key of the wrong length
    await kv.put('s.damaged', JSON.stringify({ v: 1, key: secret }));
    await kv.put('s.garbage', `not json ${secret}`);
    for (const action of [() => keys.keyFor('damaged'), () => keys.lookup(['garbage'])]) {
      const error = await failure(action);
      expect(error).toBeInstanceOf(StoreCorruptError);
      expect(`${(error as Error).message} ${JSON.stringify(error)} ${(error as Error).stack}`).not.toContain(secret);
    }
    // Damage does not block forgetting: the entry is replaced by the mark, and its revision erased.
    await keys.forget('garbage');
    expect((await keys.lookup(['garbage'])).get('garbage')?.status).toBe('forgotten');
    const left = [];
    for await (const entry of await kv.history({ key: 's.garbage' })) left.push(entry.string());
    expect(left).toEqual([expect.stringMatching(/forgottenAt/)]);
  });

  it('behaves like the in-memory model for any sequence of calls and subject ids (property)', async () => {
    const subject = fc.oneof(
      fc.constantFrom('a', 'b', 'c'),
      fc.string({ minLength: 1, maxLength: 20, unit: 'binary' }),
      // Long ids: their token is too long for a subject, so they are keyed by a hash.
      fc.string({ minLength: 150, maxLength: 250, unit: 'binary' }),
    );
    const op = fc.record({ kind: fc.constantFrom('keyFor', 'forget', 'lookup'), subject });
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 12 }), async (ops) => {
        const keys = await NatsKeyStore.create({ connection: nc, bucket: stores.bucket('prop'), storage: 'memory' });
        const model = new Map<string, Buffer | 'forgotten'>();
        for (const { kind, subject: id } of ops) {
          const known = model.get(id);
          if (kind === 'keyFor') {
            if (known === 'forgotten') await expect(keys.keyFor(id)).rejects.toBeInstanceOf(SubjectForgottenError);
            else {
              const key = await keys.keyFor(id);
              if (known !== undefined) expect(key.equals(known)).toBe(true);
              for (const [other, value] of model) if (other !== id && value !== 'forgotten') expect(key.equals(value)).toBe(false);
              model.set(id, key);
            }
          } else if (kind === 'forget') {
            await keys.forget(id);
            model.set(id, 'forgotten');
          } else {
            const found = await keys.lookup([id, ...model.keys()]);
            expect(found.size).toBe(model.size);
            for (const [other, value] of model) {
              const entry = found.get(other);
              if (value === 'forgotten') expect(entry?.status).toBe('forgotten');
              else expect(entry).toEqual({ status: 'active', key: value });
            }
            if (!model.has(id)) expect(found.has(id)).toBe(false);
          }
        }
      }),
      { numRuns: 25 },
    );
  }, 120_000);
});

type UserEvent = Event<'UserRegistered', { userId: string; email: string }>;
const policy = definePersonalData<UserEvent>({ UserRegistered: { subject: (d) => d.userId, fields: ['email'], redacted: '[forgotten]' } });

/** Every file under `dir`, read now. */
function filesUnder(dir: string): { path: string; content: Buffer }[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [{ path, content: readFileSync(path) }];
  });
}

function holders(dir: string, needles: readonly Buffer[]): string[] {
  return filesUnder(dir)
    .filter((file) => needles.some((needle) => file.content.includes(needle)))
    .map((file) => file.path.slice(dir.length));
}

const encodings = (key: Buffer): Buffer[] => [key, Buffer.from(key.toString('base64')), Buffer.from(key.toString('hex'))];

describe('NatsKeyStore on a server of its own: the store directory, byte for byte', () => {
  let server: NatsCluster;
  let own: NatsConnection;

  beforeAll(async () => {
    server = await startNatsCluster({ size: 1 });
    own = await connect({ servers: server.servers, reconnectTimeWait: 100, maxReconnectAttempts: -1 });
    await waitFor('JetStream on the own server', async () => {
      await NatsKeyStore.create({ connection: own, bucket: 'warmup' });
      return true;
    });
  }, 60_000);

  afterAll(async () => {
    await own?.close();
    await server?.stop();
  });

  it('the scan finds what a plain KV update leaves behind (why forget erases)', async () => {
    const kv = await new Kvm(own).create('plain', { history: 1, storage: 'file' as never });
    const key = Buffer.alloc(32, 0x5a);
    const revision = await kv.create('k', JSON.stringify({ key: key.toString('base64') }));
    await kv.update('k', JSON.stringify({ forgottenAt: 1 }), revision);
    expect((await kv.get('k'))?.string()).toMatch(/forgottenAt/);
    // Dropped by the per-key limit, yet its bytes are still in the block file.
    expect(holders(server.nodes[0]!.storeDir, encodings(key))).not.toEqual([]);
  });

  it("after forget, neither the key nor the email's clear text is in any file of the server; other keys stay", async () => {
    const dir = server.nodes[0]!.storeDir;
    const keys = await NatsKeyStore.create({ connection: own, bucket: 'user_keys', storage: 'file' });
    const raw = await NatsEventStore.create({ connection: own, stream: 'USERS', subjectPrefix: 'users', storage: 'file' });
    const store = new CryptoShreddingEventStore(raw, keys, policy);
    const others = [];
    for (let i = 0; i < 20; i++) {
      others.push(await keys.keyFor(`other-${i}`));
      await store.append(`user-other-${i}`, [{ type: 'UserRegistered', data: { userId: `other-${i}`, email: `other${i}@example.com` } }], {
        expectedVersion: 'no-stream',
      });
    }
    const email = 'victim.secret@example.com';
    await store.append('user-victim', [{ type: 'UserRegistered', data: { userId: 'victim', email } }], { expectedVersion: 'no-stream' });
    const victim = Buffer.from(await keys.keyFor('victim'));
    for (let i = 20; i < 30; i++) others.push(await keys.keyFor(`other-${i}`));

    // Before: the key is on disk (so the scan can fail), the email only encrypted, and it reads back.
    expect(holders(dir, encodings(victim))).not.toEqual([]);
    expect(holders(dir, [Buffer.from(email)])).toEqual([]);
    expect(JSON.stringify(await raw.readStream('user-victim').toArray())).not.toContain('victim.secret');
    expect((await store.readStream('user-victim').toArray())[0]!.data).toEqual({ userId: 'victim', email });

    await keys.forget('victim');

    expect(holders(dir, encodings(victim))).toEqual([]);
    expect(holders(dir, [Buffer.from(email), Buffer.from('victim.secret')])).toEqual([]);
    for (const key of others) expect(holders(dir, [Buffer.from(key.toString('base64'))])).not.toEqual([]);
    expect((await store.readStream('user-victim').toArray())[0]!.data).toEqual({ userId: 'victim', email: '[forgotten]' });
    expect((await store.readStream('user-other-3').toArray())[0]!.data).toEqual({ userId: 'other-3', email: 'other3@example.com' });

    // After a hard restart of the server, from its files: still forgotten, still absent.
    await server.nodes[0]!.kill();
    expect(holders(dir, encodings(victim))).toEqual([]);
    await server.nodes[0]!.start();
    await waitFor('the key store after the restart', async () => (await keys.lookup(['victim'])).get('victim')?.status === 'forgotten');
    await expect(keys.keyFor('victim')).rejects.toBeInstanceOf(SubjectForgottenError);
    expect((await keys.lookup(['other-7'])).get('other-7')).toEqual({ status: 'active', key: others[7] });
    expect(holders(dir, encodings(victim))).toEqual([]);
    await raw.close();
  }, 90_000);

  it('rides out a server restart: calls retry transient faults with backoff, report them, and fail clearly after the window', async () => {
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, warn: (message: string) => void warnings.push(message), error() {} };
    const keys = await NatsKeyStore.create({ connection: own, bucket: 'restart_keys', retryWindowMs: 20_000, logger });
    const key = await keys.keyFor('steady');
    await server.nodes[0]!.kill();
    const pending = keys.keyFor('steady');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await server.nodes[0]!.start();
    expect((await pending).equals(key)).toBe(true);
    expect(warnings.some((w) => /retrying to create a data key/.test(w))).toBe(true);

    const impatient = await NatsKeyStore.create({ connection: own, bucket: 'restart_keys', retryWindowMs: 1_000 });
    await server.nodes[0]!.kill();
    try {
      const error = await failure(() => impatient.forget('steady'));
      expect(error).toMatchObject({ code: 'STORE_UNAVAILABLE' });
    } finally {
      await server.nodes[0]!.start();
    }
    await waitFor('the key store after the second restart', async () => (await keys.lookup(['steady'])).get('steady')?.status === 'active');
  }, 90_000);

  it('a forget made while the server is down completes once it is back, and the key is in no file', async () => {
    const dir = server.nodes[0]!.storeDir;
    const warnings: string[] = [];
    const logger = { debug() {}, info() {}, warn: (message: string) => void warnings.push(message), error() {} };
    const keys = await NatsKeyStore.create({ connection: own, bucket: 'restart_forget', retryWindowMs: 20_000, logger });
    const doomed = Buffer.from(await keys.keyFor('doomed'));
    const kept = await keys.keyFor('kept');
    expect(holders(dir, encodings(doomed))).not.toEqual([]);
    await server.nodes[0]!.kill();
    const forgetting = keys.forget('doomed');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await server.nodes[0]!.start();
    await forgetting;
    expect(warnings.some((w) => /retrying to forget a data subject/.test(w))).toBe(true);
    expect(warnings.join('\n')).not.toContain(doomed.toString('base64'));
    expect((await keys.lookup(['doomed', 'kept'])).get('doomed')?.status).toBe('forgotten');
    expect(holders(dir, encodings(doomed))).toEqual([]);
    expect((await keys.lookup(['kept'])).get('kept')).toEqual({ status: 'active', key: kept });
  }, 90_000);

  it('a lost key store is a clear error naming the subject, never garbage and never a key', async () => {
    const keys = await NatsKeyStore.create({ connection: own, bucket: 'lost_keys_a' });
    const raw = await NatsEventStore.create({ connection: own, stream: 'LOST', subjectPrefix: 'lost', storage: 'file' });
    await new CryptoShreddingEventStore(raw, keys, policy).append('user-u1', [{ type: 'UserRegistered', data: { userId: 'u1', email: 'u1@example.com' } }], {
      expectedVersion: 'no-stream',
    });
    const key = await keys.keyFor('u1');
    const empty = await NatsKeyStore.create({ connection: own, bucket: 'lost_keys_b' });
    const error = await failure(() => new CryptoShreddingEventStore(raw, empty, policy).readStream('user-u1').toArray());
    expect(error).toBeInstanceOf(EncryptionKeyMissingError);
    expect((error as EncryptionKeyMissingError).subjectId).toBe('u1');
    const shown = `${(error as Error).message} ${JSON.stringify(error)} ${(error as Error).stack ?? ''}`;
    for (const text of [key.toString('base64'), key.toString('hex')]) expect(shown).not.toContain(text);
    await raw.close();
  });
});
