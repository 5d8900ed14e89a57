/**
 * Where the user's code called into labwright, for step locations. Playwright's `box`
 * option points a step at the frame after the first one outside Playwright, which for a
 * host call is labwright's own code; the report should name the test's line instead.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Location {
  file: string;
  line: number;
  column: number;
}

/** labwright's own folder (src/ in the repository, dist/ in the package). */
const OWN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..') + path.sep;
const PLAYWRIGHT = /[\\/]node_modules[\\/](@playwright|playwright|playwright-core)[\\/]/;
const FRAME = /\(?((?:file:\/\/)?[^\s()]+):(\d+):(\d+)\)?$/;

/** The first stack frame outside labwright, Playwright and Node's internals, if any. */
export function userCallSite(): Location | undefined {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 60;
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  for (const line of stack.split('\n').slice(1)) {
    const match = FRAME.exec(line.trim());
    if (!match) continue;
    const file = match[1]!.startsWith('file://') ? fileURLToPath(match[1]!) : match[1]!;
    if (!path.isAbsolute(file) || file.startsWith(OWN) || PLAYWRIGHT.test(file)) continue;
    return { file, line: Number(match[2]), column: Number(match[3]) };
  }
  return undefined;
}
