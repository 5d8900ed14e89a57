/**
 * Remote file-system questions and changes over one logged-in FTP client: sizes (SIZE, or
 * LIST where SIZE is refused), file-or-directory, directory creation, recursive listing.
 * Paths given here are absolute; server refusals become {@link FtpRefusal}s naming the path.
 */
import path from 'node:path';

import { type Client, type FileInfo, FTPError } from 'basic-ftp';

import { expandHome } from '../paths.js';

/** The server refused an operation on a remote path. */
export class FtpRefusal extends Error {
  constructor(
    /** What was attempted, e.g. `read`, `create directory`. */
    readonly action: string,
    readonly remotePath: string,
    /** The server's reply, e.g. `550 Failed to open file.` */
    readonly reply: string,
    readonly code: number,
  ) {
    super(`the server refused to ${action} ${remotePath}: "${reply}"`);
    this.name = 'FtpRefusal';
  }
}

/** Runs `body`, turning an FTP error reply into an {@link FtpRefusal} for `remotePath`. */
export async function refusalFor<T>(action: string, remotePath: string, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof FTPError) throw new FtpRefusal(action, remotePath, error.message.trim(), error.code);
    throw error;
  }
}

/** `remote` made absolute against the login directory `home` (`~` and `~/x` are the login directory too); a trailing `/` stays. */
export function absoluteRemote(home: string, remote: string): string {
  const absolute = path.posix.resolve(home, expandHome(remote, home));
  return remote.endsWith('/') && absolute !== '/' ? `${absolute}/` : absolute;
}

/** Size reported by SIZE, or the refusal when the server does not answer SIZE for this path. */
async function sizeBySize(client: Client, remotePath: string): Promise<{ size: number } | { refused: FTPError }> {
  try {
    return { size: await client.size(remotePath) };
  } catch (error) {
    if (error instanceof FTPError) return { refused: error };
    throw error;
  }
}

/** The listing entry of one file, via LIST of the file's path (SIZE-less servers). */
async function entryByList(client: Client, remotePath: string): Promise<FileInfo | undefined> {
  let entries: FileInfo[];
  try {
    entries = await client.list(remotePath);
  } catch (error) {
    if (error instanceof FTPError) return undefined;
    throw error;
  }
  const name = path.posix.basename(remotePath);
  // LIST of a file lists that file (some servers print the full path as its name).
  const match = entries.filter((entry) => entry.isFile && (entry.name === name || entry.name === remotePath));
  return match.length === 1 ? match[0] : undefined;
}

/** Size of a remote file: SIZE, else LIST when SIZE is refused. Throws an {@link FtpRefusal} if neither knows it. */
export async function remoteFileSize(client: Client, remotePath: string): Promise<number> {
  const bySize = await sizeBySize(client, remotePath);
  if ('size' in bySize) return bySize.size;
  const entry = await entryByList(client, remotePath);
  if (entry) return entry.size;
  throw new FtpRefusal('get the size of', remotePath, bySize.refused.message.trim(), bySize.refused.code);
}

/** What a remote path is. */
export type RemoteKind = { kind: 'file'; size: number } | { kind: 'directory' } | { kind: 'missing'; reply: string; code: number };

/** Whether `remotePath` is a file (with its size), a directory, or absent/unreadable. */
export async function remoteKind(client: Client, remotePath: string): Promise<RemoteKind> {
  const bySize = await sizeBySize(client, remotePath);
  if ('size' in bySize) return { kind: 'file', size: bySize.size };
  try {
    // CWD succeeds only on directories; every path here is absolute, so the changed working
    // directory does not matter.
    await client.cd(remotePath);
    return { kind: 'directory' };
  } catch (error) {
    if (!(error instanceof FTPError)) throw error;
  }
  const entry = await entryByList(client, remotePath);
  if (entry) return { kind: 'file', size: entry.size };
  return { kind: 'missing', reply: bySize.refused.message.trim(), code: bySize.refused.code };
}

/**
 * What is at a destination path, with control commands only (SIZE, CWD; no listing, so no
 * data connection): a file on a server without SIZE counts as missing, and is replaced.
 */
export async function destinationKind(client: Client, remotePath: string): Promise<'file' | 'directory' | 'missing'> {
  if ('size' in (await sizeBySize(client, remotePath))) return 'file';
  return (await isDirectory(client, remotePath)) ? 'directory' : 'missing';
}

/** Creates `remoteDir` and its missing parents (absolute path). */
export async function ensureRemoteDir(client: Client, remoteDir: string): Promise<void> {
  if (await isDirectory(client, remoteDir)) return;
  const parts = remoteDir.split('/').filter(Boolean);
  let current = '';
  let lastRefusal: FTPError | undefined;
  for (const part of parts) {
    current += `/${part}`;
    // MKD of an existing directory is refused (550) too, so refusals only count if the
    // directory is still missing at the end.
    const reply = await client.sendIgnoringError(`MKD ${current}`);
    if (reply.code >= 400) lastRefusal = new FTPError(reply);
  }
  if (!(await isDirectory(client, remoteDir))) {
    throw new FtpRefusal('create directory', remoteDir, lastRefusal?.message.trim() ?? 'directory missing after MKD', lastRefusal?.code ?? 550);
  }
}

/** Creates one directory whose parent exists; an existing directory is fine. */
export async function makeRemoteDir(client: Client, remoteDir: string): Promise<void> {
  const reply = await client.sendIgnoringError(`MKD ${remoteDir}`);
  if (reply.code < 400 || (await isDirectory(client, remoteDir))) return;
  throw new FtpRefusal('create directory', remoteDir, reply.message.trim(), reply.code);
}

/**
 * Why `target` cannot be read (`r`) or written (`w`), as far as FTP can tell: FTP servers
 * answer 550 for both a missing path and a forbidden one, so the parent is looked at: a
 * parent that is a directory holding the name (or, for writing, any existing parent
 * directory) means `denied`; a parent that is a file means `not-a-directory`.
 */
export async function explainRemotePath(client: Client, target: string, access: 'r' | 'w'): Promise<'missing' | 'denied' | 'not-a-directory'> {
  const parent = path.posix.dirname(target);
  if (parent === target) return 'denied';
  if (await isDirectory(client, parent)) {
    if (access === 'w') return 'denied';
    const entries = await client.list(parent).catch(() => [] as FileInfo[]);
    const name = path.posix.basename(target);
    return entries.some((entry) => entry.name === name || entry.name === target) ? 'denied' : 'missing';
  }
  if ('size' in (await sizeBySize(client, parent))) return 'not-a-directory';
  const why = await explainRemotePath(client, parent, 'r');
  return why === 'denied' ? 'denied' : why;
}

/** Renames `from` to `to`, replacing `to` (servers that refuse to rename over a file get it deleted first). */
export async function renameOver(client: Client, from: string, to: string): Promise<void> {
  try {
    await client.rename(from, to);
  } catch (error) {
    if (!(error instanceof FTPError)) throw error;
    await client.remove(to, true);
    await refusalFor('rename the uploaded file to', to, () => client.rename(from, to));
  }
}

/** The permission bits a listing gives for one file, when the server is Unix-like. */
export async function remoteFileMode(client: Client, remotePath: string): Promise<number | undefined> {
  const entry = await entryByList(client, remotePath);
  return entry?.permissions ? permissionBits(entry) : undefined;
}

function permissionBits(entry: FileInfo): number | undefined {
  const p = entry.permissions;
  return p ? (p.user << 6) | (p.group << 3) | p.world : undefined;
}

async function isDirectory(client: Client, remotePath: string): Promise<boolean> {
  const reply = await client.sendIgnoringError(`CWD ${remotePath}`);
  return reply.code < 400;
}

/** One entry of a remote tree, relative to its root. */
export interface RemoteEntry {
  relative: string;
  kind: 'file' | 'directory';
  size: number;
  /** Permission bits from the listing, when the server is Unix-like. */
  mode: number | undefined;
}

/**
 * Every file and directory under `remoteDir`, parents before children. Symbolic links are
 * skipped (as in the local tree size), and so are names that could escape the destination.
 */
export async function listRemoteTree(client: Client, remoteDir: string, relative = ''): Promise<RemoteEntry[]> {
  const here = relative ? path.posix.join(remoteDir, relative) : remoteDir;
  const entries = await refusalFor('list', here, () => client.list(here));
  const out: RemoteEntry[] = [];
  for (const entry of entries) {
    if (!isSafeName(entry.name) || entry.isSymbolicLink) continue;
    const rel = relative ? `${relative}/${entry.name}` : entry.name;
    const mode = permissionBits(entry);
    if (entry.isDirectory) {
      out.push({ relative: rel, kind: 'directory', size: 0, mode });
      out.push(...(await listRemoteTree(client, remoteDir, rel)));
    } else if (entry.isFile) {
      out.push({ relative: rel, kind: 'file', size: entry.size, mode });
    }
  }
  return out;
}

function isSafeName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\\') && !name.includes('\0');
}

/** Sets permission bits with SITE CHMOD; refusals are returned, not thrown (many servers lack it). */
export async function chmodRemote(client: Client, remotePath: string, mode: number): Promise<FTPError | undefined> {
  const reply = await client.sendIgnoringError(`SITE CHMOD ${(mode & 0o7777).toString(8)} ${remotePath}`);
  return reply.code >= 400 ? new FTPError(reply) : undefined;
}
