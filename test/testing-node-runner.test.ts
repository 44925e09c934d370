import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installFromCheckout as installFromCheckout_, installPackedPackage, resolvableFrom, root, run } from './support/packed-package.js';

/**
 * eventfold/testing outside vitest: the package is built and packed (`npm pack`) as it would be
 * published, installed into a temporary directory with only its runtime dependencies — where
 * vitest cannot be resolved — and run there with `node --test`: given/when/then (ESM and CJS,
 * without fast-check either), then the event store and snapshot conformance suites (with
 * fast-check added, which their property tests need).
 */

const nodeTests = join(root, 'test', 'node');
const work = mkdtempSync(join(tmpdir(), 'eventfold-node-test-'));
const app = join(work, 'app');
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface NodeTestRun {
  readonly code: number;
  readonly output: string;
  readonly summary: Readonly<Record<'tests' | 'pass' | 'fail' | 'cancelled' | 'skipped' | 'todo', number>>;
}

/** `node --test <files>` in the app directory, with the TAP reporter; never throws on failure. */
async function nodeTest(files: readonly string[]): Promise<NodeTestRun> {
  let code = 0;
  let output: string;
  try {
    const result = await run(process.execPath, ['--test', '--test-reporter=tap', ...files], {
      cwd: app,
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    output = result.stdout + result.stderr;
  } catch (error) {
    const failure = error as { code?: number; stdout?: string; stderr?: string };
    code = typeof failure.code === 'number' ? failure.code : 1;
    output = `${failure.stdout ?? ''}${failure.stderr ?? ''}`;
  }
  const count = (key: string): number => Number(new RegExp(`^# ${key} (\\d+)$`, 'm').exec(output)?.[1] ?? Number.NaN);
  return {
    code,
    output,
    summary: {
      tests: count('tests'),
      pass: count('pass'),
      fail: count('fail'),
      cancelled: count('cancelled'),
      skipped: count('skipped'),
      todo: count('todo'),
    },
  };
}

const installFromCheckout = (name: string): void => installFromCheckout_(app, name);
const resolvableFromApp = (specifier: string): Promise<boolean> => resolvableFrom(app, specifier);

beforeAll(async () => {
  await installPackedPackage(work, app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  for (const file of readdirSync(nodeTests)) cpSync(join(nodeTests, file), join(app, file));
}, 300_000);

describe('eventfold/testing without vitest (node:test, the packed package)', () => {
  it('the packed package holds the built entries and no test runner', async () => {
    const installed = join(app, 'node_modules', 'eventfold');
    expect(existsSync(join(installed, 'dist', 'testing', 'index.js'))).toBe(true);
    expect(existsSync(join(installed, 'dist', 'testing', 'index.cjs'))).toBe(true);
    const bundle = readdirSync(join(installed, 'dist'), { recursive: true })
      .filter((file) => /\.c?js$/.test(String(file)))
      .map((file) => readFileSync(join(installed, 'dist', String(file)), 'utf8'))
      .join('\n');
    // No static import of either: fast-check is only loaded when a property runs, by import() (or,
    // where that is refused, require() inside the loader: never at the top of a module).
    expect(bundle).not.toMatch(/^\s*import\b[^\n]*["']vitest["']|require\(["']vitest["']\)|import\(["']vitest["']\)/m);
    expect(bundle).not.toMatch(/^\s*import\b[^\n]*["']fast-check["']|^\S[^\n]*require\(["']fast-check["']\)/m);
    expect(bundle).toMatch(/^\s+return await import\(["']fast-check["']\)/m);
  });

  it('given/when/then run under node:test, ESM and CJS, where neither vitest nor fast-check is installed', async () => {
    expect(await resolvableFromApp('vitest')).toBe(false);
    expect(await resolvableFromApp('fast-check')).toBe(false);
    expect(await resolvableFromApp('eventfold/testing')).toBe(true);
    const result = await nodeTest(['given-when-then.test.mjs', 'given-when-then.test.cjs']);
    expect(result.summary, result.output).toEqual({ tests: 4, pass: 4, fail: 0, cancelled: 0, skipped: 0, todo: 0 });
    expect(result.code).toBe(0);
  }, 120_000);

  it('the conformance suites (event store in both capability branches, snapshots, projections) run under node:test without vitest', async () => {
    installFromCheckout('fast-check');
    expect(await resolvableFromApp('fast-check')).toBe(true);
    expect(await resolvableFromApp('vitest')).toBe(false);
    const result = await nodeTest(['conformance.test.mjs', 'projection-conformance.test.mjs']);
    expect(result.code, result.output).toBe(0);
    expect(result.summary.fail, result.output).toBe(0);
    expect(result.summary.cancelled).toBe(0);
    expect(result.summary.skipped).toBe(0);
    expect(result.summary.pass).toBe(result.summary.tests);
    expect(result.summary.tests).toBeGreaterThan(300);
    expect(result.output).toContain('declares its capabilities (atomicMultiStreamAppend: true)');
    expect(result.output).toContain('declares its capabilities (atomicMultiStreamAppend: false)');
    expect(result.output).toContain('appendMany (atomicMultiStreamAppend: false)');
    expect(result.output).toMatch(/refuses two new streams with CapabilityNotSupportedError and writes nothing/);
    expect(result.output).toContain('InMemorySnapshotStore under node:test');
    expect(result.output).toContain('InMemory under node:test — projection conformance');
    expect(result.output).toMatch(/ok \d+ - property: crashes inside or between batches/);
  }, 300_000);

  it('a failing conformance test fails the node:test run (the run above could fail)', async () => {
    // A store that claims atomic appends but is not atomic: node --test must exit non-zero.
    writeFileSync(
      join(app, 'broken.test.mjs'),
      `import { describe, it } from 'node:test';
import { InMemoryEventStore } from 'eventfold';
import { describeEventStoreConformance } from 'eventfold/testing';
class Broken extends InMemoryEventStore {
  async appendMany(appends) {
    const results = [];
    for (const entry of appends) results.push(...(await super.appendMany([entry])));
    return results;
  }
}
describeEventStoreConformance('Broken', () => new Broken(), { framework: { describe, it }, propertyRuns: 5 });
`,
    );
    const result = await nodeTest(['broken.test.mjs']);
    expect(result.code).not.toBe(0);
    expect(result.summary.fail).toBeGreaterThan(0);
    expect(result.output).toMatch(/not ok \d+ - writes nothing to any stream when entry \\?#1 has the wrong expected version/);
  }, 300_000);
});

