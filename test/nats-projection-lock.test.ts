import { connect, type NatsConnection } from '@nats-io/transport-node';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { AtLeastOnceTarget, InvalidArgumentError, ProjectionRunner, defineProjection, type ConsumerLease } from '../src/index.js';
import { NatsCheckpointStore, NatsEventStore, NatsProjectionLock } from '../src/nats/index.js';
import { foldAccounts, planEvents, type AccountEvent } from './fixtures/projection-model.js';
import { waitFor } from './support/nats-cluster.js';
import { NATS_URL, natsStores } from './support/nats.js';
import { spawnFixture } from './support/child.js';
import { hostAndPort, startTcpProxy } from './support/tcp-proxy.js';

/** The single-runner lease in JetStream KV, against the real server. */
const stores = natsStores('lock');
const connections: NatsConnection[] = [];
afterAll(async () => {
  for (const c of connections) await c.close().catch(() => undefined);
  await stores.cleanup();
});

async function connection(servers = NATS_URL): Promise<NatsConnection> {
  const c = await connect({ servers, timeout: 2_000 });
  connections.push(c);
  return c;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('NatsProjectionLock', () => {
  it('rejects bad settings with InvalidArgumentError', async () => {
    const c = await connection();
    expect(() => new NatsProjectionLock({ connection: c, ttlMs: 50 })).toThrow(InvalidArgumentError);
    expect(() => new NatsProjectionLock({ connection: c, ttlMs: 1_000, maxClockSkewMs: 500 })).toThrow(/maxClockSkewMs/);
    expect(() => new NatsProjectionLock({ connection: c, bucket: 'a.b' })).toThrow(InvalidArgumentError);
    const lock = new NatsProjectionLock({ connection: c, bucket: stores.bucket('lk'), storage: 'memory' });
    await expect(lock.tryAcquire('', 'me')).rejects.toThrow(InvalidArgumentError);
  });

  it('contenders on their own connections racing for one projection: exactly one wins each round; release hands it on at once', async () => {
    const bucket = stores.bucket('race');
    const locks = await Promise.all(
      Array.from({ length: 5 }, async () => new NatsProjectionLock({ connection: await connection(), bucket, storage: 'memory', ttlMs: 5_000 })),
    );
    for (let round = 0; round < 8; round++) {
      const leases = await Promise.all(locks.map((lock, i) => lock.tryAcquire('accounts', `runner-${round}-${i}`)));
      const winners = leases.filter((lease): lease is ConsumerLease => lease !== undefined);
      expect(winners).toHaveLength(1);
      // Held and not expired: nobody else gets it (not even under the holder's name: names may
      // repeat across machines), and another projection is free.
      expect(await locks[0]!.tryAcquire('accounts', 'late')).toBeUndefined();
      const winner = leases.findIndex((lease) => lease !== undefined);
      expect(await locks[(winner + 1) % locks.length]!.tryAcquire('accounts', `runner-${round}-${winner}`)).toBeUndefined();
      const other = await locks[1]!.tryAcquire('other', `o-${round}`);
      expect(other).toBeDefined();
      await other!.release();
      await winners[0]!.release();
      expect(await locks[0]!.inspect('accounts')).toBeUndefined();
    }
  });

  it('property: under any interleaving of concurrent takes and releases, at most one lease is held, and the stored owner is its holder', async () => {
    const bucket = stores.bucket('prop');
    const locks = await Promise.all(
      Array.from({ length: 3 }, async () => new NatsProjectionLock({ connection: await connection(), bucket, storage: 'memory', ttlMs: 10_000 })),
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ who: fc.subarray([0, 1, 2], { minLength: 1 }), release: fc.boolean() }), { minLength: 1, maxLength: 8 }),
        async (steps) => {
          const projection = `p${++run}`;
          const held = new Map<number, ConsumerLease>();
          let lost = 0;
          for (const step of steps) {
            // Everyone in `who` acts at once: holders release (if told to), the others try to take it.
            await Promise.all(
              step.who.map(async (i) => {
                const mine = held.get(i);
                if (mine !== undefined) {
                  if (step.release) {
                    held.delete(i);
                    await mine.release();
                  }
                  return;
                }
                const lease = await locks[i]!.tryAcquire(projection, `owner-${i}`);
                if (lease === undefined) return;
                lease.onLost(() => lost++);
                held.set(i, lease);
              }),
            );
            expect(held.size).toBeLessThanOrEqual(1);
            const stored = await locks[0]!.inspect(projection);
            const [holder] = [...held.keys()];
            expect(stored?.owner).toBe(holder === undefined ? undefined : `owner-${holder}`);
          }
          for (const lease of held.values()) await lease.release();
          expect(lost).toBe(0);
        },
      ),
      { numRuns: 25 },
    );
  }, 120_000);

  it('a paused holder (its heartbeat cannot reach the server) reports onLost before another takes over, and cannot write after', async () => {
    const bucket = stores.bucket('pause');
    const proxy = await startTcpProxy(hostAndPort(NATS_URL));
    try {
      const ttlMs = 1_500;
      const holderConnection = await connect({ servers: `nats://127.0.0.1:${proxy.port}`, timeout: 1_000, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
      connections.push(holderConnection);
      const holderLock = new NatsProjectionLock({ connection: holderConnection, bucket, storage: 'memory', ttlMs, maxClockSkewMs: 200 });
      const otherLock = new NatsProjectionLock({ connection: await connection(), bucket, storage: 'memory', ttlMs, maxClockSkewMs: 200 });
      const holder = await holderLock.tryAcquire('accounts', 'holder');
      expect(holder).toBeDefined();
      let lostAt: number | undefined;
      let lostReason = '';
      holder!.onLost((reason) => {
        lostAt = Date.now();
        lostReason = reason;
      });
      // Renewals keep it alive well past its ttl while the network is fine.
      await sleep(ttlMs * 2);
      expect(lostAt).toBeUndefined();
      expect(await otherLock.tryAcquire('accounts', 'other')).toBeUndefined();
      const before = await otherLock.inspect('accounts');
      proxy.blackhole();
      const pausedAt = Date.now();
      let taken: ConsumerLease | undefined;
      let takenAt = 0;
      while (taken === undefined && Date.now() - pausedAt < ttlMs * 5) {
        taken = await otherLock.tryAcquire('accounts', 'other');
        takenAt = Date.now();
        if (taken === undefined) await sleep(25);
      }
      expect(taken).toBeDefined();
      expect(lostAt).toBeDefined();
      expect(lostReason).toMatch(/expired/);
      expect(lostAt!).toBeLessThan(takenAt);
      // Not before the expiry the holder last wrote, plus the allowed skew.
      expect(takenAt).toBeGreaterThan(before!.expiresAt.getTime() + 200);
      proxy.restore();
      // The old holder's release (its connection comes back) must not remove the new lease.
      await holder!.release();
      await sleep(ttlMs);
      expect((await otherLock.inspect('accounts'))?.owner).toBe('other');
      await taken!.release();
    } finally {
      await proxy.close();
    }
  });

  it('a holder process SIGKILLed is taken over after its lease expired; one SIGSTOPped past its expiry reports the loss on SIGCONT and writes nothing', async () => {
    const bucket = stores.bucket('proc');
    const ttlMs = 1_500;
    const lock = new NatsProjectionLock({ connection: await connection(), bucket, storage: 'memory', ttlMs, maxClockSkewMs: 100 });
    const takeOver = async (): Promise<{ lease: ConsumerLease; at: number }> => {
      for (const started = Date.now(); Date.now() - started < 20_000; await sleep(25)) {
        const lease = await lock.tryAcquire('accounts', 'parent');
        if (lease !== undefined) return { lease, at: Date.now() };
      }
      throw new Error('no takeover within 20 s');
    };

    const killed = spawnFixture('nats-lease-holder.ts', [NATS_URL, bucket, 'accounts', String(ttlMs)]);
    await killed.waitForLine('held');
    await sleep(ttlMs); // renewed meanwhile
    const lastWritten = (await lock.inspect('accounts'))!;
    expect(lastWritten.owner).toBe(`child-${killed.process.pid}`);
    killed.process.kill('SIGKILL');
    await killed.exited;
    const first = await takeOver();
    expect(first.at).toBeGreaterThan(lastWritten.expiresAt.getTime() + 100);
    await first.lease.release();

    const paused = spawnFixture('nats-lease-holder.ts', [NATS_URL, bucket, 'accounts', String(ttlMs)]);
    try {
      await paused.waitForLine('held');
      paused.process.kill('SIGSTOP');
      const second = await takeOver();
      const ours = (await lock.inspect('accounts'))!;
      expect(ours.owner).toBe('parent');
      paused.process.kill('SIGCONT');
      await expect.poll(() => paused.lines.find((l) => l.startsWith('lost ')), { timeout: 10_000 }).toBeDefined();
      // Any late renewal of its was refused (compare-and-set): the entry is still ours.
      await sleep(ttlMs);
      expect((await lock.inspect('accounts'))?.owner).toBe('parent');
      await second.lease.release();
    } finally {
      paused.process.kill('SIGKILL');
      await paused.exited;
    }
  }, 60_000);

  it('a lease whose renewal fails its compare-and-set (the entry was replaced) is lost at once', async () => {
    const bucket = stores.bucket('cas');
    const c = await connection();
    const lock = new NatsProjectionLock({ connection: c, bucket, storage: 'memory', ttlMs: 600, maxClockSkewMs: 100 });
    const lease = await lock.tryAcquire('accounts', 'a');
    const lost = new Promise<string>((resolve) => lease!.onLost(resolve));
    // Someone deletes the entry by hand (as an operator would to break a lock).
    await (await lock.bucket()).delete('lock.accounts');
    const startedAt = Date.now();
    expect(await lost).toMatch(/took the lease over|deleted/);
    expect(Date.now() - startedAt).toBeLessThan(600);
    const again = await lock.tryAcquire('accounts', 'b');
    expect(again).toBeDefined();
    await lease!.release();
    expect((await lock.inspect('accounts'))?.owner).toBe('b');
    await again!.release();
  });
});

describe('NatsProjectionLock with ProjectionRunner, NatsCheckpointStore and AtLeastOnceTarget', () => {
  async function seed(store: NatsEventStore, count: number, salt: number): Promise<void> {
    const kinds = Array.from({ length: count }, (_, i) => ({ stream: (i * 5 + salt) % 7, kind: (i % 5 === 4 ? 1 : 0) as 0 | 1 | 2, amount: (i % 40) + 1 }));
    for (const append of planEvents(kinds)) await store.append(append.streamId, append.events, { expectedVersion: 'any' });
  }

  /** A read model shared by the runners (as a database would be), idempotent by event id. */
  function balancesProjection(balances: Map<string, number>, seen: Set<string>, applied: string[]) {
    const apply = (id: string, stream: string, delta: number): void => {
      applied.push(id);
      if (seen.has(id)) return;
      seen.add(id);
      balances.set(stream, (balances.get(stream) ?? 0) + delta);
    };
    return defineProjection<AccountEvent, Map<string, number>>({
      name: 'balances',
      handlers: {
        Deposited: (e) => apply(e.eventId, e.streamId, e.data.amount),
        Withdrawn: (e) => apply(e.eventId, e.streamId, -e.data.amount),
      },
    });
  }

  it('two runners racing: exactly one runs; the holder killed (connection closed, no release) is taken over after expiry and the read model equals a full fold', async () => {
    const writer = await stores.create();
    await seed(writer, 80, 1);
    const cpBucket = stores.bucket('rcp');
    const balances = new Map<string, number>();
    const seen = new Set<string>();
    const applied: string[] = [];
    const ttlMs = 1_200;
    const runnerOn = async (owner: string) => {
      const store = await NatsEventStore.create({ servers: NATS_URL, stream: writer.options.stream, subjectPrefix: writer.options.subjectPrefix, storage: 'memory' });
      const lock = new NatsProjectionLock({ connection: store.connection, bucket: cpBucket, storage: 'memory', ttlMs, maxClockSkewMs: 100 });
      const checkpoints = new NatsCheckpointStore({ connection: store.connection, bucket: cpBucket, storage: 'memory' });
      const runner = new ProjectionRunner({
        store,
        projection: balancesProjection(balances, seen, applied),
        target: new AtLeastOnceTarget({ checkpoints, context: () => balances }),
        lock,
        owner,
        batchSize: 10,
        pollIntervalMs: 50,
        lockRetryMs: 50,
        retry: { initialDelayMs: 20, maxDelayMs: 200 },
      });
      return { store, lock, runner };
    };
    const a = await runnerOn('runner-a');
    const b = await runnerOn('runner-b');
    await Promise.all([a.runner.start(), b.runner.start()]);
    const holds = (r: { runner: ProjectionRunner<AccountEvent, Map<string, number>> }) => ['catching-up', 'live', 'rebuilding'].includes(r.runner.status.state);
    await waitFor('one runner to hold the lock', () => holds(a) || holds(b), 10_000);
    expect([holds(a), holds(b)].filter(Boolean)).toHaveLength(1);
    const [holder, standby] = holds(a) ? [a, b] : [b, a];
    expect(standby.runner.status.state).toBe('waiting-for-lock');
    await holder.runner.waitUntilCaughtUp({ timeoutMs: 20_000 });
    // The standby keeps standing by while the holder renews, over several ttls.
    await sleep(ttlMs * 2);
    expect(standby.runner.status.state).toBe('waiting-for-lock');
    const lease = await holder.lock.inspect('balances');
    expect(lease?.owner).toBe(holder.runner.status.owner);
    // The lease shares the checkpoints' bucket without showing up as a checkpoint.
    const sharing = new NatsCheckpointStore({ connection: standby.store.connection, bucket: cpBucket, storage: 'memory' });
    expect((await sharing.list()).map((c) => c.projection)).toEqual(['balances']);
    // Killed: its connection goes without a release; the lease stays until it expires.
    await holder.store.connection.close();
    const killedAt = Date.now();
    await seed(writer, 40, 2);
    await waitFor('the standby to take over', () => holds(standby), 20_000);
    expect(Date.now()).toBeGreaterThan(lease!.expiresAt.getTime());
    expect(Date.now() - killedAt).toBeGreaterThan(0);
    await standby.runner.waitUntilCaughtUp({ timeoutMs: 20_000 });
    await standby.runner.stop();
    await holder.runner.stop().catch(() => undefined);
    const fold = foldAccounts(await writer.readAll().toArray());
    expect(Object.fromEntries(balances)).toEqual(Object.fromEntries([...fold.accounts].map(([k, v]) => [k, v.balance])));
    // Every event applied at least once, and the standby's stop released the lease.
    expect(new Set(applied).size).toBe(fold.applied.length);
    expect(await standby.lock.inspect('balances')).toBeUndefined();
    await standby.store.close();
    await holder.store.close().catch(() => undefined);
  });

  it('a runner cut off from NATS (its heartbeat lost) is replaced once its lease expired, the read model equals the fold, and back online it stands by', async () => {
    const writer = await stores.create();
    await seed(writer, 30, 3);
    const cpBucket = stores.bucket('rcut');
    const proxy = await startTcpProxy(hostAndPort(NATS_URL));
    const balances = new Map<string, number>();
    const seen = new Set<string>();
    const applied: string[] = [];
    const ttlMs = 1_500;
    const events: { what: string; at: number }[] = [];
    const runnerOn = async (owner: string, servers: string) => {
      const store = await NatsEventStore.create({
        servers,
        stream: writer.options.stream,
        subjectPrefix: writer.options.subjectPrefix,
        storage: 'memory',
        connectionOptions: { pingInterval: 300, maxPingOut: 2, reconnectTimeWait: 100, maxReconnectAttempts: -1, timeout: 1_000 },
        retryWindowMs: 2_000,
      });
      const runner = new ProjectionRunner({
        store,
        projection: balancesProjection(balances, seen, applied),
        target: new AtLeastOnceTarget({ checkpoints: new NatsCheckpointStore({ connection: store.connection, bucket: cpBucket, storage: 'memory' }), context: () => balances }),
        lock: new NatsProjectionLock({ connection: store.connection, bucket: cpBucket, storage: 'memory', ttlMs, maxClockSkewMs: 100 }),
        owner,
        batchSize: 10,
        pollIntervalMs: 50,
        lockRetryMs: 50,
        retry: { initialDelayMs: 20, maxDelayMs: 200 },
        onError: () => undefined,
        onStatus: (status) => {
          if (status.state === 'catching-up') events.push({ what: `${owner} took`, at: Date.now() });
        },
      });
      return { store, runner };
    };
    try {
      const a = await runnerOn('cut', `nats://127.0.0.1:${proxy.port}`);
      await a.runner.start();
      await a.runner.waitUntilCaughtUp({ timeoutMs: 20_000 });
      const b = await runnerOn('standby', NATS_URL);
      await b.runner.start();
      expect(b.runner.status.state).toBe('waiting-for-lock');
      proxy.blackhole();
      const cutAt = Date.now();
      await seed(writer, 20, 4);
      await waitFor('the standby to take over', () => events.some((e) => e.what === 'standby took'), 20_000);
      // Not before the cut runner's lease expired: its last renewal was at most ttl/3 before the cut.
      const took = events.find((e) => e.what === 'standby took')!;
      expect(took.at - cutAt).toBeGreaterThanOrEqual(Math.floor((ttlMs * 2) / 3));
      await b.runner.waitUntilCaughtUp({ timeoutMs: 20_000 });
      const fold = foldAccounts(await writer.readAll().toArray());
      expect(Object.fromEntries(balances)).toEqual(Object.fromEntries([...fold.accounts].map(([k, v]) => [k, v.balance])));
      // Back on the network, the cut runner finds the lease held and stands by.
      proxy.restore();
      await waitFor('the cut runner to stand by', () => a.runner.status.state === 'waiting-for-lock', 20_000);
      expect(b.runner.status.state).toBe('live');
      await b.runner.stop();
      await a.runner.stop();
      await b.store.close();
      await a.store.close();
    } finally {
      await proxy.close();
    }
  }, 60_000);
});
