/** What a local transfer source holds, and local file modes. */
import { lstat, readdir, stat } from 'node:fs/promises';
import path from 'node:path';

/** One entry of a local tree, relative to its root. */
export interface LocalEntry {
  relative: string;
  kind: 'file' | 'directory';
  size: number;
  mode: number;
}

/** A local source: one file, or a directory with its entries (parents before children). */
export type LocalSource =
  | { kind: 'file'; size: number; mode: number }
  | { kind: 'directory'; mode: number; entries: LocalEntry[] };

/**
 * Reads what `root` holds. The root itself may be a symbolic link (the caller named it);
 * links inside a directory are skipped, as `treeSize()` of localTree.ts does.
 */
export async function readLocalSource(root: string): Promise<LocalSource> {
  const info = await stat(root);
  if (info.isFile()) return { kind: 'file', size: info.size, mode: info.mode & 0o7777 };
  if (!info.isDirectory()) throw Object.assign(new Error(`${root} is neither a file nor a directory`), { code: 'EINVAL', path: root });
  return { kind: 'directory', mode: info.mode & 0o7777, entries: await walk(root, '') };
}

async function walk(root: string, relative: string): Promise<LocalEntry[]> {
  const out: LocalEntry[] = [];
  const names = (await readdir(path.join(root, relative))).sort();
  for (const name of names) {
    const rel = relative ? `${relative}/${name}` : name;
    const info = await lstat(path.join(root, rel));
    if (info.isDirectory()) {
      out.push({ relative: rel, kind: 'directory', size: 0, mode: info.mode & 0o7777 });
      out.push(...(await walk(root, rel)));
    } else if (info.isFile()) {
      out.push({ relative: rel, kind: 'file', size: info.size, mode: info.mode & 0o7777 });
    }
  }
  return out;
}
