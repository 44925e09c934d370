import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installFromCheckout, installPackedPackage, resolvableFrom, root, run } from './support/packed-package.js';

/**
 * The jest and mocha adapters that docs/testing.md shows, taken from the doc itself and run with
 * the real jest (CommonJS, its default setup) and mocha (ESM) against the packed package, where
 * vitest cannot be resolved. A deliberately broken store proves each run can fail.
 */

const work = mkdtempSync(join(tmpdir(), 'eventfold-jest-mocha-'));
const app = join(work, 'app');
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The doc's "With another framework" snippet: the jest line, the mocha line, the suite call. */
function docSnippet(): { jest: string; mocha: string; call: string } {
  const doc = readFileSync(join(root, 'docs', 'testing.md'), 'utf8');
  const block = /```js\n(\/\/ jest\n[\s\S]*?)```/.exec(doc)?.[1];
  if (block === undefined) throw new Error('docs/testing.md has no ```js block starting with // jest');
  const lines = block.split('\n');
  const after = (marker: string) => lines[lines.indexOf(marker) + 1]!;
  const call = lines.find((line) => line.startsWith('describeEventStoreConformance('));
  if (call === undefined) throw new Error('the snippet calls no describeEventStoreConformance');
  return { jest: after('// jest'), mocha: after('// mocha'), call };
}

/** A store that claims atomic appendMany but appends entry by entry: the suite must fail it. */
const BROKEN_STORE = `class Broken extends InMemoryEventStore {
  async appendMany(appends) {
    const results = [];
    for (const entry of appends) results.push(...(await super.appendMany([entry])));
    return results;
  }
}`;

/** The test file: the doc's framework line and suite call (its `createStore` is ours), plus a snapshot suite. */
function testFile(framework: string, call: string, moduleKind: 'cjs' | 'esm', name: string, broken: boolean): string {
  const imports =
    moduleKind === 'cjs'
      ? `const { InMemoryEventStore, InMemorySnapshotStore } = require('eventfold');\n` +
        `const { describeEventStoreConformance, describeSnapshotStoreConformance } = require('eventfold/testing');`
      : `import { InMemoryEventStore, InMemorySnapshotStore } from 'eventfold';\n` +
        `import { describeEventStoreConformance, describeSnapshotStoreConformance } from 'eventfold/testing';`;
  const store = broken ? `${BROKEN_STORE}\nconst createStore = () => new Broken();` : 'const createStore = () => new InMemoryEventStore();';
  return `${imports}
${store}
${framework}

${call.replace("'MyEventStore'", JSON.stringify(name))}
${broken ? '' : `describeSnapshotStoreConformance(${JSON.stringify(`${name} snapshots`)}, () => ({ events: new InMemoryEventStore(), snapshots: new InMemorySnapshotStore() }), { framework, propertyRuns: 10 });`}
`;
}

interface RunResult {
  readonly code: number;
  readonly output: string;
}

async function runIn(cwd: string, args: readonly string[]): Promise<RunResult> {
  try {
    const result = await run(process.execPath, args, { cwd, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, NODE_OPTIONS: '' } });
    return { code: 0, output: result.stdout + result.stderr };
  } catch (error) {
    const failure = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failure.code === 'number' ? failure.code : 1, output: `${failure.stdout ?? ''}${failure.stderr ?? ''}` };
  }
}

interface Counts {
  readonly total: number;
  readonly passed: number;
  readonly failed: number;
  readonly pending: number;
}

/** Runs jest (from this checkout) on one CommonJS test file in `<app>/jest`, with its JSON report. */
async function jest(file: string): Promise<RunResult & { counts: Counts }> {
  const dir = join(app, 'jest');
  const report = join(dir, `${file}.json`);
  const config = JSON.stringify({ rootDir: dir, testEnvironment: 'node', transform: {}, testMatch: [`**/${file}`], cacheDirectory: join(work, 'jest-cache') });
  const result = await runIn(dir, [join(root, 'node_modules', 'jest', 'bin', 'jest.js'), '--ci', '--config', config, '--json', '--outputFile', report]);
  const json = JSON.parse(readFileSync(report, 'utf8')) as Record<string, number>;
  return {
    ...result,
    counts: { total: json['numTotalTests']!, passed: json['numPassedTests']!, failed: json['numFailedTests']!, pending: json['numPendingTests']! },
  };
}

/** Runs mocha (from this checkout) on one ESM test file in `<app>/mocha`, with its JSON report. */
async function mocha(file: string): Promise<RunResult & { counts: Counts }> {
  const dir = join(app, 'mocha');
  const report = join(dir, `${file}.json`);
  const result = await runIn(dir, [join(root, 'node_modules', 'mocha', 'bin', 'mocha.js'), '--reporter', 'json', '--reporter-option', `output=${report}`, file]);
  const stats = (JSON.parse(readFileSync(report, 'utf8')) as { stats: Record<string, number> }).stats;
  return { ...result, counts: { total: stats['tests']!, passed: stats['passes']!, failed: stats['failures']!, pending: stats['pending']! } };
}

const snippet = docSnippet();

beforeAll(async () => {
  await installPackedPackage(work, app);
  installFromCheckout(app, 'fast-check');
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
  mkdirSync(join(app, 'jest'));
  writeFileSync(join(app, 'jest', 'package.json'), JSON.stringify({ name: 'jest-app', private: true, type: 'commonjs' }));
  writeFileSync(join(app, 'jest', 'conformance.test.js'), testFile(snippet.jest, snippet.call, 'cjs', 'InMemoryEventStore under jest', false));
  writeFileSync(join(app, 'jest', 'broken.test.js'), testFile(snippet.jest, snippet.call, 'cjs', 'Broken under jest', true));
  mkdirSync(join(app, 'mocha'));
  writeFileSync(join(app, 'mocha', 'package.json'), JSON.stringify({ name: 'mocha-app', private: true, type: 'module' }));
  writeFileSync(join(app, 'mocha', 'conformance.test.mjs'), testFile(snippet.mocha, snippet.call, 'esm', 'InMemoryEventStore under mocha', false));
  writeFileSync(join(app, 'mocha', 'broken.test.mjs'), testFile(snippet.mocha, snippet.call, 'esm', 'Broken under mocha', true));
}, 300_000);

describe('the conformance suites under jest and mocha, as docs/testing.md shows them', () => {
  it('takes the adapters from the doc, in an app where vitest cannot be resolved', async () => {
    expect(snippet.jest).toContain('it(name, body, timeout)');
    expect(snippet.mocha).toContain('this.timeout(timeout)');
    expect(snippet.call).toContain('capabilities: { atomicMultiStreamAppend: true }');
    expect(await resolvableFrom(app, 'vitest')).toBe(false);
    expect(await resolvableFrom(app, 'eventfold/testing')).toBe(true);
  });

  it('jest (CommonJS) runs every event store and snapshot conformance test, property tests included, and passes', async () => {
    const result = await jest('conformance.test.js');
    expect(result.code, result.output).toBe(0);
    expect(result.counts.failed, result.output).toBe(0);
    expect(result.counts.pending).toBe(0);
    expect(result.counts.passed).toBe(result.counts.total);
    expect(result.counts.total).toBeGreaterThan(150);
    expect(result.output).toContain('InMemoryEventStore under jest snapshots');
    expect(result.output).toMatch(/properties \(atomicMultiStreamAppend: true\)/);
  }, 300_000);

  it('mocha (ESM) runs every event store and snapshot conformance test, property tests included, and passes', async () => {
    const result = await mocha('conformance.test.mjs');
    expect(result.code, result.output).toBe(0);
    expect(result.counts.failed, result.output).toBe(0);
    expect(result.counts.pending).toBe(0);
    expect(result.counts.passed).toBe(result.counts.total);
    expect(result.counts.total).toBeGreaterThan(150);
  }, 300_000);

  it('a store that breaks the contract fails the jest run and the mocha run (the runs above could fail)', async () => {
    for (const result of [await jest('broken.test.js'), await mocha('broken.test.mjs')]) {
      expect(result.code).not.toBe(0);
      expect(result.counts.failed, result.output).toBeGreaterThan(0);
    }
  }, 300_000);
});
