import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'tsup';
import tsupConfig from '../../tsup.config.js';

/**
 * eventfold as a user gets it: built (the tsup config) and packed (`npm pack`) as it would be
 * published, then installed into `<app>/node_modules` with only its runtime dependencies, so
 * nothing else from this checkout (vitest, fast-check, …) can be resolved from the app.
 */

export const run = promisify(execFile);
export const root = fileURLToPath(new URL('../..', import.meta.url));

/** Builds and packs the package in `work`, and installs it into `app`. */
export async function installPackedPackage(work: string, app: string): Promise<void> {
  // Build as published (ESM + CJS, the tsup config), into a staging copy of the package.
  const staging = join(work, 'package');
  // The config may be one build or several (the library, the CLI): each keeps its place under the package.
  const configs = (Array.isArray(tsupConfig) ? tsupConfig : [tsupConfig]) as Parameters<typeof build>[0][];
  for (const config of configs) {
    const outDir = join(staging, config.outDir ?? 'dist');
    await build({ ...config, config: false, outDir, dts: false, sourcemap: false, silent: true });
  }
  for (const file of ['package.json', 'README.md', 'LICENSE']) cpSync(join(root, file), join(staging, file));
  const { stdout } = await run('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', work], { cwd: staging });
  const tarball = join(work, stdout.trim().split('\n').at(-1)!);

  // Install it the way npm lays it out: the package and its runtime dependencies, nothing else.
  const installed = join(app, 'node_modules', 'eventfold');
  mkdirSync(installed, { recursive: true });
  await run('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1']);
  const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  for (const dependency of Object.keys(manifest.dependencies ?? {})) installFromCheckout(app, dependency);
}

/** Copies an installed package (and, recursively, its dependencies) from this checkout into the app. */
export function installFromCheckout(app: string, name: string): void {
  const target = join(app, 'node_modules', name);
  if (existsSync(target)) return;
  const source = join(root, 'node_modules', name);
  cpSync(source, target, { recursive: true, dereference: true });
  const manifest = JSON.parse(readFileSync(join(source, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  for (const dependency of Object.keys(manifest.dependencies ?? {})) installFromCheckout(app, dependency);
}

/** Whether `specifier` can be imported from `dir`. */
export async function resolvableFrom(dir: string, specifier: string): Promise<boolean> {
  const probe = `import(${JSON.stringify(specifier)}).then(() => console.log('yes'), () => console.log('no'))`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', probe], { cwd: dir });
  return stdout.trim() === 'yes';
}
