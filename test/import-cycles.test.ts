/**
 * The module graph of src/: no import cycles between files, and layers that import downwards only
 * (no cycle between folders, adapters used by nothing but the CLI, the kernel importing nothing
 * above it). Follows every relative `import`, `export … from` (type-only ones too, since a cycle
 * of types is still a tangle of modules) and, for the layers, dynamic `import()`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../src', import.meta.url));

/** Adapters: each depends on the core only, and only the CLI (which opens any store) uses them. */
const ADAPTERS = ['sqlite', 'postgres', 'nats', 'rabbitmq', 'opentelemetry'];
/** The bottom layer: errors, events, logging and backoff import nothing but each other. */
const KERNEL = ['errors.ts', 'errors', 'events', 'logging.ts', 'backoff.ts'];
/** Tools on top: nothing else imports them. */
const TOP = ['cli', 'testing', 'index.ts'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** Relative module specifiers of a file, resolved to .ts paths (`dynamic`: `import()` too). */
function importsOf(file: string, dynamic = false): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'";]*?from\s+['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]!);
  if (dynamic) specifiers.push(...[...text.matchAll(/import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g)].map((m) => m[1]!));
  return specifiers.map((specifier) => resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
}

function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (node: string): void => {
    state.set(node, 'open');
    stack.push(node);
    for (const dep of graph.get(node) ?? []) {
      if (!graph.has(dep)) continue;
      if (state.get(dep) === 'open') cycles.push([...stack.slice(stack.indexOf(dep)), dep]);
      else if (state.get(dep) === undefined) visit(dep);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of graph.keys()) if (state.get(node) === undefined) visit(node);
  return cycles;
}

function fileGraph(files: readonly string[]): Map<string, string[]> {
  return new Map(files.map((f) => [f, importsOf(f)] as const));
}

/** The folder of src/ a file belongs to ('store', 'postgres'), or the file itself at the top. */
function unitOf(file: string): string {
  return relative(SRC, file).split(sep)[0]!;
}

function unitGraph(files: readonly string[]): Map<string, string[]> {
  const graph = new Map<string, Set<string>>();
  for (const file of files) {
    const from = unitOf(file);
    const deps = graph.get(from) ?? new Set<string>();
    graph.set(from, deps);
    for (const target of importsOf(file, true)) if (unitOf(target) !== from) deps.add(unitOf(target));
  }
  return new Map([...graph].map(([unit, deps]) => [unit, [...deps].sort()]));
}

/** Every import that goes against the layers, as 'from -> to'. */
function layerViolations(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const violations: string[] = [];
  for (const [from, deps] of graph) {
    for (const to of deps) {
      const wrong =
        (ADAPTERS.includes(to) && from !== 'cli') ||
        (TOP.includes(to) && to !== from) ||
        (KERNEL.includes(from) && !KERNEL.includes(to));
      if (wrong) violations.push(`${from} -> ${to}`);
    }
  }
  return violations;
}

describe('module graph of src/', () => {
  const files = sourceFiles(SRC);

  it('has no import cycles', () => {
    expect(files.length).toBeGreaterThan(20);
    const cycles = findCycles(fileGraph(files)).map((cycle) => cycle.map((f) => relative(SRC, f)).join(' -> '));
    expect(cycles).toEqual([]);
  });

  it('finds a cycle where there is one (the checker itself works)', () => {
    const here = fileURLToPath(import.meta.url);
    const fixture = join(dirname(here), 'fixtures', 'import-cycle');
    const cycles = findCycles(fileGraph(sourceFiles(fixture))).map((cycle) => cycle.map((f) => relative(fixture, f)));
    expect(cycles).toEqual([['a.ts', 'b.ts', 'a.ts']]);
  });

  it('has layers: no cycle between folders, adapters used only by the CLI, a kernel that imports nothing above it', () => {
    const graph = unitGraph(files);
    for (const unit of [...ADAPTERS, ...KERNEL, 'store', 'cli', 'testing']) expect(graph.has(unit), unit).toBe(true);
    expect(findCycles(graph).map((cycle) => cycle.join(' -> '))).toEqual([]);
    expect(layerViolations(graph)).toEqual([]);
    // The CLI opens the adapters lazily, so a user without a driver installed can still run it.
    expect(graph.get('cli')).toEqual(expect.arrayContaining(['postgres', 'sqlite']));
  });

  it('finds imports against the layers (the checker itself works)', () => {
    const graph = new Map<string, string[]>([
      ['store', ['events', 'postgres']],
      ['events', ['errors.ts', 'store']],
      ['projections', ['testing', 'store']],
      ['postgres', ['store', 'sqlite']],
      ['cli', ['postgres', 'store']],
    ]);
    expect(layerViolations(graph).sort()).toEqual(['events -> store', 'postgres -> sqlite', 'projections -> testing', 'store -> postgres']);
    expect(findCycles(graph).map((cycle) => cycle.join(' -> ')).sort()).toEqual(['store -> events -> store', 'store -> postgres -> store']);
  });
});
