/** Size of a local file or directory tree, for transfer verification. */
import { lstat, readdir, stat } from 'node:fs/promises';
import path from 'node:path';

/** Regular files and their total bytes under `target` (a file counts as one). Symlinks are not followed. */
export async function treeSize(target: string): Promise<{ files: number; bytes: number }> {
  const info = await lstat(target);
  if (info.isFile()) return { files: 1, bytes: info.size };
  if (!info.isDirectory()) return { files: 0, bytes: 0 };
  let files = 0;
  let bytes = 0;
  for (const entry of await readdir(target)) {
    const sub = await treeSize(path.join(target, entry));
    files += sub.files;
    bytes += sub.bytes;
  }
  return { files, bytes };
}

/** Regular files under `root`, as `/`-separated paths relative to it (`['']` when `root` is a file). */
export async function listFiles(root: string, prefix = ''): Promise<string[]> {
  if (!prefix && (await stat(root)).isFile()) return [''];
  const out: string[] = [];
  for (const entry of await readdir(path.join(root, prefix), { withFileTypes: true })) {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(root, relative)));
    else if (entry.isFile()) out.push(relative);
  }
  return out;
}
