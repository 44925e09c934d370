import { InvalidArgumentError } from '../errors.js';
import type { PreparedAppend } from './store-input.js';

/**
 * Group commit: appends that arrive while a commit is under way are written together, in one
 * transaction and one commit (one fsync), instead of one each. Each append keeps its own
 * expected-version check and atomicity, and its caller hears back only after the commit that holds
 * its events; a conflict fails only its own append.
 *
 * `true` (the default on the SQLite and PostgreSQL stores) takes the defaults below; `false` gives
 * every append its own transaction.
 */
export type GroupCommitSetting = boolean | GroupCommitOptions;

export interface GroupCommitOptions {
  /** Most appends (store calls) written in one transaction. Default 32. */
  readonly maxAppends?: number;
  /** Most events written in one transaction; an append larger than this goes alone. Default 2,000. */
  readonly maxEvents?: number;
  /**
   * Extra time to wait for more appends before committing a group, in milliseconds. Default 0: a
   * group is whatever arrived while the previous commit ran (no wait at all when appends do not
   * overlap), so latency without concurrency does not grow.
   */
  readonly maxDelayMs?: number;
}

export interface ResolvedGroupCommit {
  readonly maxAppends: number;
  readonly maxEvents: number;
  readonly maxDelayMs: number;
}

/** Microtask hops a synchronous driver waits for callers to append before it commits a group. */
const GATHER_HOPS = 32;

/** Streams per group: a group's stream locks are taken one by one, so keep their number small. */
export const MAX_GROUP_STREAMS = 32;

export function resolveGroupCommit(setting: GroupCommitSetting | undefined): ResolvedGroupCommit | undefined {
  if (setting === false) return undefined;
  if (setting !== undefined && setting !== true && (typeof setting !== 'object' || setting === null)) {
    throw new InvalidArgumentError(`groupCommit must be true, false or { maxAppends, maxEvents, maxDelayMs }, got ${String(setting)}.`);
  }
  const options: GroupCommitOptions = typeof setting === 'object' ? setting : {};
  const resolved = { maxAppends: options.maxAppends ?? 32, maxEvents: options.maxEvents ?? 2000, maxDelayMs: options.maxDelayMs ?? 0 };
  for (const [name, value] of Object.entries(resolved)) {
    const min = name === 'maxDelayMs' ? 0 : 1;
    if (!Number.isSafeInteger(value) || value < min) {
      throw new InvalidArgumentError(`groupCommit.${name} must be an integer >= ${min}, got ${String(value)}.`);
    }
  }
  if (resolved.maxAppends > 1000) throw new InvalidArgumentError(`groupCommit.maxAppends must be at most 1000.`);
  return Object.freeze(resolved);
}

/** Counters of a store's group commits since it was created. */
export interface GroupCommitStats {
  /** Transactions written by the group committer. */
  readonly groups: number;
  /** Store calls (`append`, `appendMany`) they carried. */
  readonly appends: number;
  /** Most calls carried by one transaction. */
  readonly largestGroup: number;
}

/** What one append of a group came to: its results, or the error only its caller sees. */
export type GroupOutcome<R> = { readonly ok: true; readonly value: R } | { readonly ok: false; readonly error: unknown };

/** One store call waiting in a group: `appends` are committed atomically together (an `appendMany`). */
export interface GroupMember {
  readonly appends: readonly PreparedAppend[];
}

interface Waiting<M extends GroupMember, R> {
  readonly member: M;
  readonly events: number;
  readonly resolve: (value: R) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * The queue behind group commit, shared by the adapters (the commit itself is theirs).
 * - `commit(group)` writes the group in one transaction and returns one outcome per member, in
 *   order; it throws only when the whole group failed, and then every member gets that error.
 * - `start`: `'now'` commits as soon as fewer than `maxInFlight` commits are under way (an async
 *   driver: appends gather while a commit is in flight); `'soon'` commits once the callers already
 *   running have had a few microtask hops to append (a synchronous driver, which never has a
 *   commit in flight: callers answered by one commit append again, and go together). Without any
 *   sign of concurrency (the last group was one append, and no other append in this run of
 *   microtasks) a `'soon'` append is committed in its caller's own call, without the hops.
 * - A group never holds two members that touch the same stream (the later one waits for the next
 *   group, keeping per-stream order), nor a stream of a commit still in flight, nor more than
 *   `MAX_GROUP_STREAMS` streams.
 */
export class GroupCommitter<M extends GroupMember, R> {
  private readonly queue: Waiting<M, R>[] = [];
  private inFlight = 0;
  private scheduled = false;
  /** Callers answered by the group that just finished (0: none to wait for). */
  private regather = 0;
  /** Size of the last group committed (a synchronous driver's sign of concurrency). */
  private lastGroup = 0;
  /** An append was committed alone in this run of microtasks. */
  private committedAlone = false;
  private readonly running = new Set<Promise<void>>();
  /** Streams of the groups in flight: a later append to one waits for its group to finish. */
  private readonly busy = new Map<string, number>();
  private groups = 0;
  private appends = 0;
  private largestGroup = 0;

  constructor(
    private readonly options: ResolvedGroupCommit,
    private readonly start: 'now' | 'soon',
    private readonly maxInFlight: number,
    private readonly commit: (group: readonly M[]) => Promise<readonly GroupOutcome<R>[]> | readonly GroupOutcome<R>[],
  ) {}

  /** Appends waiting or being committed. */
  get pending(): number {
    return this.queue.length + this.inFlight;
  }

  get stats(): GroupCommitStats {
    return { groups: this.groups, appends: this.appends, largestGroup: this.largestGroup };
  }

  submit(member: M): Promise<R> {
    let events = 0;
    for (const append of member.appends) events += append.events.length;
    return new Promise<R>((resolve, reject) => {
      const waiting = { member, events, resolve, reject };
      if (this.start === 'soon' && this.alone()) {
        this.commitAlone(waiting);
      } else {
        this.queue.push(waiting);
        this.schedule();
      }
    });
  }

  /**
   * Commits everything queued now (synchronously where the commit is) and waits for every commit
   * under way: `close()` calls it, so no accepted append is dropped.
   */
  async drain(): Promise<void> {
    for (;;) {
      while (this.launch());
      if (this.running.size === 0) return;
      // Appends behind a stream in flight go once its group is done.
      await Promise.race(this.running);
    }
  }

  /**
   * A synchronous driver with nothing queued or scheduled, whose last group was a single append,
   * and no other append yet in this run of microtasks: no sign of concurrency, so the append is
   * committed at once, in its caller's call, with no hop at all. A second append arriving before
   * the microtask queue drains goes the gathering way (so does everyone after a larger group).
   */
  private alone(): boolean {
    return this.queue.length === 0 && !this.scheduled && this.inFlight === 0 && this.lastGroup <= 1 && !this.committedAlone && this.options.maxDelayMs === 0;
  }

  /** Commits one append in its caller's own call: a group of one, without the queue. */
  private commitAlone(waiting: Waiting<M, R>): void {
    this.committedAlone = true;
    queueMicrotask(() => (this.committedAlone = false));
    this.commitGroup([waiting]);
  }

  private schedule(): void {
    if (this.scheduled || this.queue.length === 0 || this.inFlight >= this.maxInFlight) return;
    const delay = this.options.maxDelayMs;
    const run = (): void => {
      this.scheduled = false;
      while (this.inFlight < this.maxInFlight && this.launch());
    };
    if (this.start === 'now' && delay === 0) {
      const regather = this.regather;
      this.regather = 0;
      if (this.queue.length >= regather) {
        run();
        return;
      }
      // The callers the last commit answered usually append again at once (a command loop, a
      // request handler): one turn of the event loop lets them all join the next group, instead
      // of the first going alone and the rest waiting for it (many small groups cost a round trip
      // and a commit each). Never after a group of one, so an append without concurrency starts
      // at once.
      this.scheduled = true;
      setImmediate(run);
      return;
    }
    this.scheduled = true;
    if (delay > 0) {
      setTimeout(run, delay);
      return;
    }
    // A synchronous driver: let the callers whose continuations are already queued (the ones the
    // last commit just answered, a few awaits deep) make their appends first, then commit them all.
    // Microtask hops cost next to nothing without concurrency, unlike waiting for the next turn.
    let hops = GATHER_HOPS;
    const hop = (): void => {
      if (--hops > 0) queueMicrotask(hop);
      else run();
    };
    queueMicrotask(hop);
  }

  private take(): Waiting<M, R>[] {
    const { maxAppends, maxEvents } = this.options;
    const group: Waiting<M, R>[] = [];
    const streams = new Set<string>();
    // A stream in flight on another commit (an asynchronous driver runs several at once) is not
    // touched until that commit is done: its appends stay in submission order.
    const blocked = new Set<string>(this.busy.keys());
    let events = 0;
    for (let i = 0; i < this.queue.length && group.length < maxAppends; ) {
      const waiting = this.queue[i]!;
      const ids = waiting.member.appends.map((a) => a.streamId);
      const free = !ids.some((id) => blocked.has(id));
      const fits =
        free &&
        (group.length === 0 ||
          (events + waiting.events <= maxEvents && streams.size + ids.length <= MAX_GROUP_STREAMS && !ids.some((id) => streams.has(id))));
      if (!fits) {
        // Later members on these streams wait too, so each stream's appends keep their order.
        for (const id of ids) blocked.add(id);
        i++;
        continue;
      }
      group.push(waiting);
      for (const id of ids) streams.add(id);
      events += waiting.events;
      this.queue.splice(i, 1);
    }
    return group;
  }

  /** Starts a commit of the next group; false when nothing queued can go now. */
  private launch(): boolean {
    if (this.queue.length === 0) return false;
    const group = this.take();
    if (group.length === 0) return false;
    this.commitGroup(group);
    return true;
  }

  /** Marks the group's streams busy and commits it; a synchronous commit answers its callers at once. */
  private commitGroup(group: readonly Waiting<M, R>[]): void {
    this.groups++;
    this.appends += group.length;
    if (group.length > this.largestGroup) this.largestGroup = group.length;
    for (const waiting of group) for (const append of waiting.member.appends) this.busy.set(append.streamId, (this.busy.get(append.streamId) ?? 0) + 1);
    this.inFlight++;
    let result: Promise<readonly GroupOutcome<R>[]> | readonly GroupOutcome<R>[];
    try {
      result = this.commit(group.map((w) => w.member));
    } catch (error) {
      this.finish(group, undefined, error);
      return;
    }
    if (!isPromise(result)) {
      this.finish(group, result, undefined);
      return;
    }
    const running = result.then(
      (outcomes) => this.finish(group, outcomes, undefined),
      (error: unknown) => this.finish(group, undefined, error),
    );
    this.running.add(running);
    void running.then(() => this.running.delete(running));
  }

  /** Answers a group's callers (each its outcome, or all the group's error) and frees its streams. */
  private finish(group: readonly Waiting<M, R>[], outcomes: readonly GroupOutcome<R>[] | undefined, error: unknown): void {
    for (let i = 0; i < group.length; i++) {
      const outcome = outcomes?.[i];
      if (outcomes === undefined) group[i]!.reject(error);
      else if (outcome === undefined) group[i]!.reject(new Error('eventfold: a group commit returned no outcome for an append (a bug).'));
      else if (outcome.ok) group[i]!.resolve(outcome.value);
      else group[i]!.reject(outcome.error);
    }
    for (const waiting of group) {
      for (const append of waiting.member.appends) {
        const left = (this.busy.get(append.streamId) ?? 1) - 1;
        if (left > 0) this.busy.set(append.streamId, left);
        else this.busy.delete(append.streamId);
      }
    }
    this.inFlight--;
    if (group.length > 1) this.regather = group.length;
    this.lastGroup = group.length;
    this.schedule();
  }
}

function isPromise<T>(value: Promise<T> | T): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}
