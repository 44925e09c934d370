import type { ConsumerErrorInfo } from '../consumers/retry.js';

/**
 * A runner's last fault, stored where its checkpoint lives so tools (`eventfold projections
 * status`, the event browser) see it from outside the runner's process. Written when a fault is
 * reported, cleared when the runner gets past it. The message is the fault's text as thrown:
 * treat it as untrusted when showing it (it can carry event data or a driver's words).
 */
export interface StoredRunnerError {
  readonly message: string;
  /** The error's stable code (`EventfoldError.code`) or driver code (`ECONNREFUSED`, `57P01`, `SQLITE_BUSY`), if any. */
  readonly code: string | undefined;
  /** When the fault was reported. */
  readonly at: Date;
  /** Failed attempts in a row so far. */
  readonly attempts: number;
  /** `retrying`: the runner waits out a backoff and tries again; `failed`: it gave up (stopped, or parked the event). */
  readonly state: 'retrying' | 'failed';
}

/** Longest message stored; the rest is cut (a stack or a huge payload must not bloat the row). */
export const MAX_STORED_ERROR_LENGTH = 2_000;

/** The innermost code in the cause chain: the driver's (`ECONNREFUSED`, `57P01`) says more than a wrapper's. */
function codeOf(error: unknown, depth = 0): string | undefined {
  if (typeof error !== 'object' || error === null || depth > 5) return undefined;
  const inner = codeOf((error as { cause?: unknown }).cause, depth + 1);
  if (inner !== undefined) return inner;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && code !== '') return code.slice(0, 100);
  if (typeof code === 'number' && Number.isFinite(code)) return String(code);
  return undefined;
}

/** What a runner stores about a reported fault. */
export function runnerErrorRecord(error: Error, info: ConsumerErrorInfo, at = new Date()): StoredRunnerError {
  const text = error.message === '' ? error.name : error.message;
  return Object.freeze({
    message: text.length > MAX_STORED_ERROR_LENGTH ? `${text.slice(0, MAX_STORED_ERROR_LENGTH - 1)}…` : text,
    code: codeOf(error),
    at,
    attempts: Math.max(1, Math.floor(info.attempt)),
    state: info.willRetry ? 'retrying' : 'failed',
  });
}

/** Checks a stored record read back from a database or a KV value (it may be from another version, or tampered with). */
export function parseStoredRunnerError(raw: {
  message: unknown;
  code: unknown;
  at: unknown;
  attempts: unknown;
  state: unknown;
}): StoredRunnerError | undefined {
  if (typeof raw.message !== 'string') return undefined;
  const at = raw.at instanceof Date ? raw.at : new Date(typeof raw.at === 'number' || typeof raw.at === 'string' ? raw.at : NaN);
  if (Number.isNaN(at.getTime())) return undefined;
  const attempts = Number(raw.attempts);
  return Object.freeze({
    message: raw.message,
    code: typeof raw.code === 'string' && raw.code !== '' ? raw.code : undefined,
    at,
    attempts: Number.isSafeInteger(attempts) && attempts > 0 ? attempts : 1,
    state: raw.state === 'failed' ? 'failed' : 'retrying',
  });
}

/** Where a target keeps its runner's last fault (beside its checkpoint). */
export interface RunnerErrorSink {
  /** Stores the fault, or clears it with `undefined`. */
  recordError(projection: string, error: StoredRunnerError | undefined): Promise<void>;
}

/**
 * Writes a runner's faults to its target in the background, one write at a time, newest wins.
 * A fault is written after `debounceMs` (the newest one by then): a blip the runner gets past at
 * once is never written, a burst costs one write, and by the time it writes, a pool whose
 * connections just died has noticed (the write does not pick up a dead idle connection and hide
 * its report). A write that fails (the database is the thing that is down) is reported once per
 * streak to `onWriteError` and dropped; the next fault or the recovery writes again. Recovery
 * (the runner committed or caught up) clears a stored record once.
 */
export class RunnerErrorRecorder {
  private pending: { value: StoredRunnerError | undefined } | undefined;
  private writing: Promise<void> | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** True while a fault is (or may be) stored, so recovery must clear it. */
  private stored = false;
  private failing = false;

  constructor(
    private readonly projection: string,
    private readonly sink: RunnerErrorSink | undefined,
    private readonly options: { readonly debounceMs?: number; readonly onWriteError?: (error: unknown) => void } = {},
  ) {}

  fault(error: Error, info: ConsumerErrorInfo): void {
    if (this.sink === undefined) return;
    this.pending = { value: runnerErrorRecord(error, info) };
    if (this.writing !== undefined || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.drainNow();
    }, this.options.debounceMs ?? 250);
    this.timer.unref?.();
  }

  /** The runner got past its faults. Cheap when nothing is stored or waiting. */
  recovered(): void {
    if (this.sink === undefined) return;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (!this.stored && this.writing === undefined) {
      this.pending = undefined;
      return;
    }
    this.pending = { value: undefined };
    this.drainNow();
  }

  /** Writes what waits now, and waits for it at most `timeoutMs` (a database that is down must not hold up a stop). */
  async flush(timeoutMs = 2_000): Promise<void> {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.drainNow();
    }
    const writing = this.writing;
    if (writing === undefined) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([writing, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  private drainNow(): void {
    if (this.writing !== undefined || this.pending === undefined) return;
    this.writing = this.drain().finally(() => {
      this.writing = undefined;
    });
  }

  private async drain(): Promise<void> {
    while (this.pending !== undefined) {
      const { value } = this.pending;
      this.pending = undefined;
      if (value !== undefined) this.stored = true;
      else if (!this.stored) continue;
      try {
        await this.sink!.recordError(this.projection, value);
        if (value === undefined) this.stored = false;
        this.failing = false;
      } catch (error) {
        // A cleared record that failed to write stays 'stored': the next recovery clears again.
        if (!this.failing) this.options.onWriteError?.(error);
        this.failing = true;
      }
    }
  }
}
