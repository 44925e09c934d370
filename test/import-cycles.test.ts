/**
 * No import cycles in src/: layers import downwards only. Follows every relative `import` and
 * `export … from` (type-only ones too, since a cycle of types is still a tangle of modules).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../src', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** Relative module specifiers of a file, resolved to .ts paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'";]*?from\s+['"](\.{1,2}\/[^'"]+)['"]/g)];
  return specifiers.map((m) => resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts')));
}

function findCycles(files: readonly string[]): string[][] {
  const graph = new Map(files.map((f) => [f, importsOf(f)] as const));
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const dep of graph.get(file) ?? []) {
      if (!graph.has(dep)) continue;
      if (state.get(dep) === 'open') cycles.push([...stack.slice(stack.indexOf(dep)), dep]);
      else if (state.get(dep) === undefined) visit(dep);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of files) if (state.get(file) === undefined) visit(file);
  return cycles;
}

describe('module graph of src/', () => {
  it('has no import cycles', () => {
    const files = sourceFiles(SRC);
    expect(files.length).toBeGreaterThan(20);
    const cycles = findCycles(files).map((cycle) => cycle.map((f) => relative(SRC, f)).join(' -> '));
    expect(cycles).toEqual([]);
  });

  it('finds a cycle where there is one (the checker itself works)', () => {
    const here = fileURLToPath(import.meta.url);
    const fixture = join(dirname(here), 'fixtures', 'import-cycle');
    const cycles = findCycles(sourceFiles(fixture)).map((cycle) => cycle.map((f) => relative(fixture, f)));
    expect(cycles).toEqual([['a.ts', 'b.ts', 'a.ts']]);
  });
});
