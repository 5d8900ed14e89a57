import os from 'node:os';
import path from 'node:path';

/** Expands a leading `~` to the home directory and resolves the path. */
export function expandHome(file: string): string {
  if (file === '~') return os.homedir();
  if (file.startsWith('~/')) return path.join(os.homedir(), file.slice(2));
  return path.resolve(file);
}
