import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

// src/testing stays loadable without a test framework, free of import cycles, and in small files.
const dir = fileURLToPath(new URL('../src/testing/', import.meta.url));
const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
const source = (file: string): string => readFileSync(join(dir, file), 'utf8');
const importsOf = (file: string): string[] =>
  ts.preProcessFile(source(file), true, true).importedFiles.map((imported) => imported.fileName);
const isTypeOnly = (file: string, specifier: string): boolean =>
  new RegExp(`^import type [^;]*from\\s+'${specifier.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}'`, 'm').test(source(file));

describe('src/testing structure', () => {
  it('no module imports vitest, and fast-check only as types (it is loaded when a property runs)', () => {
    expect(files.length).toBeGreaterThan(10);
    for (const file of files) {
      for (const specifier of importsOf(file)) {
        expect(specifier, file).not.toBe('vitest');
        if (specifier === 'fast-check') expect(isTypeOnly(file, specifier), `${file} imports fast-check at runtime`).toBe(true);
      }
    }
  });

  it('has no import cycles among its modules', () => {
    const graph = new Map(
      files.map((file) => [
        file,
        importsOf(file)
          .filter((s) => s.startsWith('./'))
          .map((s) => normalize(join(dirname(file), s)).replace(/\.js$/, '.ts')),
      ]),
    );
    const state = new Map<string, 'visiting' | 'done'>();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]): void => {
      state.set(file, 'visiting');
      for (const next of graph.get(file) ?? []) {
        if (state.get(next) === 'visiting') cycles.push([...path, file, next].join(' -> '));
        else if (!state.has(next)) visit(next, [...path, file]);
      }
      state.set(file, 'done');
    };
    for (const file of files) if (!state.has(file)) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it('keeps every file under 400 lines', () => {
    const long = files.map((file) => [file, source(file).split('\n').length] as const).filter(([, lines]) => lines > 400);
    expect(long).toEqual([]);
  });
});
