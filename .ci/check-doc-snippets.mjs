// Type-checks every TypeScript snippet in README.md and docs/ against the BUILT package, the way a
// user's project sees it: strict, NodeNext resolution through the package's `exports`, ESM.
//
// Each ```ts block is its own module. Two markers (HTML comments, invisible on rendered pages) let
// a page show a fragment while the check still compiles a whole program:
//   <!-- doc-check: prelude
//   declare const events: RecordedEvent[];
//   -->                          code put in front of the next ```ts block only
//   <!-- doc-check: continue --> the next block continues the previous block's module
// There is no way to skip a block: a snippet that cannot compile is a bug in the docs.
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const work = join(root, '.doc-check');

function markdownFiles() {
  const files = [join(root, 'README.md')];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.md')) files.push(path);
    }
  };
  walk(join(root, 'docs'));
  for (const example of readdirSync(join(root, 'examples'), { withFileTypes: true })) {
    const readme = join(root, 'examples', example.name, 'README.md');
    if (example.isDirectory() && existsSync(readme)) files.push(readme);
  }
  return files;
}

/** Splits a page into modules: { lines: [{ text, docLine }] }[] */
function modulesOf(markdown) {
  const lines = markdown.split('\n');
  const modules = [];
  let prelude = [];
  let continueNext = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '<!-- doc-check: continue -->') {
      continueNext = true;
      continue;
    }
    if (line.trim() === '<!-- doc-check: prelude') {
      for (i++; i < lines.length && lines[i].trim() !== '-->'; i++) prelude.push({ text: lines[i], docLine: i + 1 });
      continue;
    }
    const fence = /^(\s*)```(ts|typescript|tsx)\s*$/.exec(line);
    if (fence === null) continue;
    const body = [];
    for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]); i++) {
      body.push({ text: lines[i].slice(fence[1].length), docLine: i + 1 });
    }
    const code = [...prelude, ...body];
    if (continueNext && modules.length > 0) modules[modules.length - 1].push(...code);
    else modules.push(code);
    prelude = [];
    continueNext = false;
  }
  return modules;
}

rmSync(work, { recursive: true, force: true });
mkdirSync(join(work, 'node_modules'), { recursive: true });
writeFileSync(join(work, 'package.json'), JSON.stringify({ name: 'doc-check', private: true, type: 'module' }));
// The snippets import 'eventfold' as an installed package: resolve it through its exports map.
symlinkSync(root, join(work, 'node_modules', 'eventfold'), 'dir');
if (!existsSync(join(root, 'dist', 'index.d.ts'))) {
  console.error('check-doc-snippets: dist/ is missing; run `npm run build` first.');
  process.exit(2);
}

const sources = new Map(); // snippet file -> { doc, lines }
for (const doc of markdownFiles()) {
  modulesOf(readFileSync(doc, 'utf8')).forEach((lines, index) => {
    const name = `${relative(root, doc).replace(/[^A-Za-z0-9]+/g, '_')}_${index + 1}.ts`;
    const file = join(work, name);
    // `export {}` keeps every snippet a module, so top-level await and local names never clash.
    writeFileSync(file, `${lines.map((l) => l.text).join('\n')}\nexport {};\n`);
    sources.set(file, { doc: relative(root, doc), lines });
  });
}

const program = ts.createProgram([...sources.keys()], {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  lib: ['lib.es2022.d.ts'],
  types: ['node'],
  typeRoots: [join(root, 'node_modules', '@types')],
  strict: true,
  noUncheckedIndexedAccess: true,
  exactOptionalPropertyTypes: true,
  skipLibCheck: true,
  noEmit: true,
});

let failures = 0;
for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
  const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
  const source = diagnostic.file === undefined ? undefined : sources.get(diagnostic.file.fileName);
  if (source === undefined || diagnostic.start === undefined) {
    console.error(`error: ${message}`);
  } else {
    const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
    const docLine = source.lines[line]?.docLine ?? '?';
    console.error(`${source.doc}:${docLine}: ${message}`);
  }
  failures++;
}
const count = sources.size;
if (failures > 0) {
  console.error(`check-doc-snippets: ${failures} error(s) in ${count} snippet module(s).`);
  process.exit(1);
}
rmSync(work, { recursive: true, force: true });
console.log(`check-doc-snippets: ${count} snippet module(s) compile against the built package.`);
