/** Small timing helpers shared by the bench scripts: warm up, repeat, take the median. */

export interface MeasureOptions {
  /** Untimed runs first, so the JIT has settled. */
  readonly warmup?: number;
  /** Timed runs; the median is reported. */
  readonly repeats?: number;
}

export interface Measurement {
  readonly medianMs: number;
  readonly samplesMs: readonly number[];
}

const gc = (globalThis as { gc?: () => void }).gc;

/** Collects garbage between runs when node runs with --expose-gc, so one run's garbage does not bill the next. */
export function collectGarbage(): void {
  gc?.();
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Times `run` (given a fresh `prepare()` result each time, prepared outside the timing).
 * Returns the median of `repeats` runs after `warmup` untimed runs.
 */
export async function measure<T>(
  prepare: () => T | Promise<T>,
  run: (input: T) => unknown,
  options: MeasureOptions = {},
): Promise<Measurement> {
  const { warmup = 2, repeats = 5 } = options;
  const samples: number[] = [];
  for (let i = 0; i < warmup + repeats; i++) {
    const input = await prepare();
    collectGarbage();
    const start = process.hrtime.bigint();
    await run(input);
    const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
    if (i >= warmup) samples.push(elapsed);
  }
  return { medianMs: median(samples), samplesMs: samples };
}

export function formatNumber(value: number): string {
  if (value >= 100) return Math.round(value).toLocaleString('en-US');
  if (value >= 1) return value.toFixed(2);
  return value.toPrecision(3);
}

export interface Row {
  readonly workload: string;
  readonly eventfold: string;
  readonly baseline: string;
  readonly ratio: string;
  readonly goal: string;
  readonly met: boolean;
}

/** Prints rows as a markdown table. */
export function printTable(title: string, rows: readonly Row[]): void {
  console.log(`\n### ${title}\n`);
  console.log('| workload | eventfold | baseline | ratio | goal | met |');
  console.log('|---|---:|---:|---:|---|:---:|');
  for (const r of rows) {
    console.log(`| ${r.workload} | ${r.eventfold} | ${r.baseline} | ${r.ratio} | ${r.goal} | ${r.met ? 'yes' : 'NO'} |`);
  }
  console.log('');
}

export interface Contender<T> {
  /** Builds the input of one run, outside the timing. */
  readonly prepare: () => T | Promise<T>;
  readonly run: (input: T) => unknown;
}

/**
 * Times two contenders in alternation (a, b, a, b, …) and reports each one's median. On a shared
 * machine the load drifts during a benchmark; alternating spreads the drift over both sides, so
 * the ratio is fairer than timing one side after the other.
 */
export async function compare<A, B>(
  a: Contender<A>,
  b: Contender<B>,
  options: MeasureOptions = {},
): Promise<{ a: Measurement; b: Measurement }> {
  const { warmup = 2, repeats = 5 } = options;
  const samplesA: number[] = [];
  const samplesB: number[] = [];
  const once = async <T>(c: Contender<T>): Promise<number> => {
    const input = await c.prepare();
    collectGarbage();
    const start = process.hrtime.bigint();
    await c.run(input);
    return Number(process.hrtime.bigint() - start) / 1e6;
  };
  for (let i = 0; i < warmup + repeats; i++) {
    const ta = await once(a);
    const tb = await once(b);
    if (i >= warmup) {
      samplesA.push(ta);
      samplesB.push(tb);
    }
  }
  return {
    a: { medianMs: median(samplesA), samplesMs: samplesA },
    b: { medianMs: median(samplesB), samplesMs: samplesB },
  };
}
