/** Loading `lab.config.ts` (or .js/.mjs/.json) from disk. */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

import { ConfigError, messageOf } from '../util/errors.js';
import { defineLab, isLabConfig, type LabConfig, type LabInput, withLabSource } from './defineLab.js';

/** Environment variable naming the lab file when no option says otherwise. */
export const LAB_FILE_ENV = 'LABWRIGHT_LAB';

/** The lab file used when neither an option nor {@link LAB_FILE_ENV} names one. */
export const DEFAULT_LAB_FILE = 'lab.config.ts';

/** Resolves which lab file to use: explicit option, then `$LABWRIGHT_LAB`, then `lab.config.ts`. */
export function resolveLabFile(option?: string, cwd = process.cwd()): string {
  const chosen = option || process.env[LAB_FILE_ENV] || DEFAULT_LAB_FILE;
  return path.resolve(cwd, chosen);
}

async function importModule(file: string): Promise<unknown> {
  if (/\.json$/i.test(file)) return JSON.parse(await readFile(file, 'utf8'));
  const url = pathToFileURL(file).href;
  if (!/\.[cm]?tsx?$/i.test(file)) return import(url);
  // Load it as Node would (ESM or CommonJS by extension and package type) through the
  // TypeScript loader at hand: Playwright's or tsx's. Plain Node has none: tsx compiles
  // on the fly. A failed import() poisons a later require() of the same file, so the
  // right one goes first. The first error is the one reported.
  const viaImport = () => import(url);
  const viaRequire = async () => createRequire(import.meta.url)(file);
  const viaTsx = async () => (await import('tsx/esm/api')).tsImport(url, import.meta.url);
  const attempts = (await isEsmFile(file)) ? [viaImport, viaTsx] : [viaRequire, viaTsx];
  let firstError: unknown;
  for (const attempt of attempts) {
    try {
      return await attempt();
    } catch (error) {
      firstError ??= error;
    }
  }
  throw firstError;
}

/** Whether Node treats `file` as an ES module: `.mts`, or `.ts` in a `"type": "module"` package. */
async function isEsmFile(file: string): Promise<boolean> {
  if (/\.m[tj]sx?$/i.test(file)) return true;
  if (/\.c[tj]sx?$/i.test(file)) return false;
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as { type?: string };
      return pkg.type === 'module';
    } catch {
      // No (readable) package.json here: look further up.
    }
    if (path.dirname(dir) === dir) return false;
  }
}

/**
 * Loads and validates a lab file. Its default export is the result of `defineLab()` or a
 * plain object validated here. Throws a {@link ConfigError} naming the file.
 */
export async function loadLab(file: string): Promise<LabConfig> {
  const absolute = path.resolve(file);
  if (!existsSync(absolute)) {
    throw new ConfigError([
      `lab file ${absolute} does not exist; create it with defineLab() or point ${LAB_FILE_ENV} (or the labFile option) at your lab file`,
    ]);
  }
  let loaded: unknown;
  try {
    loaded = await importModule(absolute);
  } catch (error) {
    if (error instanceof ConfigError) throw withSource(error, absolute);
    const cause = error instanceof Error && error.cause instanceof ConfigError ? error.cause : undefined;
    if (cause) throw withSource(cause, absolute);
    throw new ConfigError([`could not load ${absolute}: ${messageOf(error)}`]);
  }
  let value = (loaded as { default?: unknown }).default ?? loaded;
  // A module compiled to CommonJS arrives wrapped once more ({ default: { default } }).
  if (!isLabConfig(value) && typeof value === 'object' && value !== null && Object.keys(value).join() === 'default') {
    value = (value as { default: unknown }).default;
  }
  if (isLabConfig(value)) return value.source ? value : withLabSource(value, absolute);
  if (typeof value !== 'object' || value === null) {
    throw new ConfigError([`${absolute} must export a lab (export default defineLab({...}))`]);
  }
  return defineLab(value as LabInput, absolute);
}

function withSource(error: ConfigError, source: string): ConfigError {
  return error.message.includes(source) ? error : new ConfigError(error.problems, source);
}
