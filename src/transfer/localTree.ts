/**
 * The one walker of local trees, for every transfer method and for local copies: what a
 * local path holds, as one file or a directory with its entries. The root may be a symbolic
 * link (the caller named it); links and special files inside a directory are skipped.
 */
import { lstat, readdir, stat } from 'node:fs/promises';
import path from 'node:path';

/** One entry of a local tree, relative to its root. */
export interface LocalEntry {
  /** `/`-separated path below the root. */
  relative: string;
  kind: 'file' | 'directory';
  size: number;
  /** Permission bits. */
  mode: number;
}

/** A local source: one file, or a directory with its entries (parents before children, names sorted). */
export type LocalSource = { kind: 'file'; size: number; mode: number } | { kind: 'directory'; mode: number; entries: LocalEntry[] };

/** Reads what `root` holds; Node's file-system errors (ENOENT, EACCES, ...) pass through. */
export async function readLocalSource(root: string): Promise<LocalSource> {
  const info = await stat(root);
  if (info.isFile()) return { kind: 'file', size: info.size, mode: info.mode & 0o7777 };
  if (!info.isDirectory()) throw Object.assign(new Error(`${root} is neither a file nor a directory`), { code: 'EINVAL', path: root });
  return { kind: 'directory', mode: info.mode & 0o7777, entries: await walk(root, '') };
}

/** Files and bytes a source holds (a single file counts as one). */
export function sourceTotals(source: LocalSource): { files: number; bytes: number } {
  if (source.kind === 'file') return { files: 1, bytes: source.size };
  let files = 0;
  let bytes = 0;
  for (const entry of source.entries) {
    if (entry.kind !== 'file') continue;
    files++;
    bytes += entry.size;
  }
  return { files, bytes };
}

/** The regular files of a source: `''` for a single file, else each file's relative path. */
export function sourceFiles(source: LocalSource): LocalEntry[] {
  if (source.kind === 'file') return [{ relative: '', kind: 'file', size: source.size, mode: source.mode }];
  return source.entries.filter((entry) => entry.kind === 'file');
}

/** `relative` (`/`-separated) below `root` as a runner path. */
export function localPathOf(root: string, relative: string): string {
  return relative ? path.join(root, ...relative.split('/')) : root;
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
