/**
 * Path confinement of a shared folder: the SFTP client sees a virtual namespace whose `/`
 * is the folder (absolute paths are taken relative to it, like a chroot) and nothing it
 * names may resolve outside it.
 *
 * How a client path becomes a real path:
 * 1. Lexically: `.` and empty segments dropped, `..` applied; a `..` above `/` is refused
 *    (not clamped, so `../x` never quietly means `/x`).
 * 2. The parent directory is resolved with `realpath` and must lie inside the folder.
 * 3. When the operation follows links (open, stat, setstat, opendir), a final symlink is
 *    followed one hop at a time, each hop's parent resolved and checked again, whether the
 *    target exists or not (a dangling link pointing outside cannot be used to create a file
 *    there). The result is a path whose parent is canonical and inside the folder and whose
 *    last component is not a symlink; callers open it with `O_NOFOLLOW`.
 * Operations on the link itself (lstat, remove, rename, readlink, rmdir) stop at step 2.
 *
 * Check-then-use races: the only way to put a symlink where a checked path used to be is a
 * rename or a symlink creation, and those run under the exclusive side of a read/write lock
 * while every path-resolving operation holds the shared side from resolution to syscall.
 * Processes on the runner that change the folder concurrently are trusted.
 */
import { constants as fsConstants, promises as fs } from 'node:fs';
import path from 'node:path';

import { Semaphore } from 'async-mutex';

/** A client path refused because it would leave the shared folder. */
export class OutsideShareError extends Error {
  readonly code = 'LW_OUTSIDE_SHARE';
  constructor(what: string) {
    super(`${what} is outside the shared folder`);
    this.name = 'OutsideShareError';
  }
}

/** A client path that is malformed (NUL byte). */
export class BadPathError extends Error {
  readonly code = 'LW_BAD_PATH';
  constructor() {
    super('path contains a NUL byte');
    this.name = 'BadPathError';
  }
}

/** Symlink hops followed before giving up (Linux's own limit is 40). */
const MAX_LINK_HOPS = 40;

/** Weight of the exclusive side of the lock: every shared holder has to be gone. */
const LOCK_WEIGHT = 1_000_000;

/** `realpath` that reports a missing path as `undefined`. */
async function realpathOrMissing(p: string): Promise<string | undefined> {
  try {
    return await fs.realpath(p);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Lexical normalisation of a client path into the virtual namespace: always absolute,
 * no `.`/`..`/empty segments. Throws {@link OutsideShareError} for `..` above `/`.
 */
export function normalizeVirtual(clientPath: string): string {
  if (clientPath.includes('\0')) throw new BadPathError();
  const parts: string[] = [];
  for (const segment of clientPath.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (parts.length === 0) throw new OutsideShareError(JSON.stringify(clientPath));
      parts.pop();
    } else {
      parts.push(segment);
    }
  }
  return `/${parts.join('/')}`;
}

/** The shared folder: maps client paths to real ones and refuses every escape. */
export class ShareRoot {
  private readonly lock = new Semaphore(LOCK_WEIGHT);

  private constructor(
    /** Canonical real path of the folder. */
    readonly real: string,
  ) {}

  /** Opens a folder for sharing; it must exist and be a directory. */
  static async open(dir: string): Promise<ShareRoot> {
    const real = await fs.realpath(dir);
    const stats = await fs.stat(real);
    if (!stats.isDirectory()) throw Object.assign(new Error(`${dir} is not a directory`), { code: 'ENOTDIR' });
    return new ShareRoot(real);
  }

  /** Whether a real absolute path is the folder or below it. */
  contains(realPath: string): boolean {
    if (this.real === path.sep) return true;
    return realPath === this.real || realPath.startsWith(this.real + path.sep);
  }

  /** The virtual path of a real path inside the folder. */
  toVirtual(realPath: string): string {
    if (!this.contains(realPath)) throw new OutsideShareError('the path');
    const relative = path.relative(this.real, realPath);
    return relative === '' ? '/' : `/${relative.split(path.sep).join('/')}`;
  }

  /** The real path of a normalised virtual path, lexically (no filesystem access). */
  private lexicalReal(virtual: string): string {
    return virtual === '/' ? this.real : path.join(this.real, ...virtual.slice(1).split('/'));
  }

  /** Canonical parent directory of `realPath`, which must be inside the folder. */
  private async checkedParent(realPath: string, clientPath: string): Promise<string> {
    const parent = await fs.realpath(path.dirname(realPath));
    if (!this.contains(parent)) throw new OutsideShareError(JSON.stringify(clientPath));
    return parent;
  }

  /**
   * Resolves a client path to a real path inside the folder. `follow`: follow a final
   * symlink (checking every hop) as open/stat do; otherwise the last component itself is
   * meant (lstat, remove, rename, readlink). The path need not exist; its parent must.
   */
  async resolve(clientPath: string, options: { follow: boolean }): Promise<string> {
    const virtual = normalizeVirtual(clientPath);
    if (virtual === '/') return this.real;
    let current = path.join(await this.checkedParent(this.lexicalReal(virtual), clientPath), path.basename(virtual));
    if (!options.follow) return current;
    for (let hop = 0; hop < MAX_LINK_HOPS; hop++) {
      let isLink: boolean;
      try {
        isLink = (await fs.lstat(current)).isSymbolicLink();
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return current;
        throw error;
      }
      if (!isLink) return current;
      // Next hop: the link's target with its parent made canonical and checked; the name
      // itself is looked at in the next round (it may be another link, or missing).
      const target = path.resolve(path.dirname(current), await fs.readlink(current));
      const parent = await fs.realpath(path.dirname(target));
      current = path.join(parent, path.basename(target));
      if (current !== this.real && !this.contains(parent)) throw new OutsideShareError(JSON.stringify(clientPath));
    }
    throw Object.assign(new Error('too many levels of symbolic links'), { code: 'ELOOP' });
  }

  /**
   * The canonical virtual path of a client path (REALPATH): links resolved when the path
   * exists, the lexical form when it does not.
   */
  async canonical(clientPath: string): Promise<string> {
    const real = await this.resolve(clientPath, { follow: true });
    return this.toVirtual(real);
  }

  /**
   * The target of the symlink at `clientPath`, as the client should see it: relative
   * targets as stored, absolute ones as virtual paths. Refused when the target lies
   * outside the folder (the link is never followed to find out what is there).
   */
  async readlink(clientPath: string): Promise<string> {
    const link = await this.resolve(clientPath, { follow: false });
    const text = await fs.readlink(link);
    const target = path.resolve(path.dirname(link), text);
    await this.assertTargetInside(target, clientPath);
    return path.isAbsolute(text) ? this.toVirtual(target) : text;
  }

  /**
   * Where a new symlink goes and what it stores, for SYMLINK. The target is read in the
   * virtual namespace (absolute = from the share's `/`, relative = from the link's folder)
   * and must stay inside; it is stored as a real absolute path or relative to the link's
   * real parent, so it means the same thing to processes on the runner.
   */
  async linkTarget(linkClientPath: string, targetClientPath: string): Promise<{ link: string; text: string }> {
    if (targetClientPath.includes('\0')) throw new BadPathError();
    const link = await this.resolve(linkClientPath, { follow: false });
    const parent = path.dirname(link);
    const absolute = targetClientPath.startsWith('/');
    const target = absolute ? this.lexicalReal(normalizeVirtual(targetClientPath)) : path.resolve(parent, targetClientPath);
    await this.assertTargetInside(target, targetClientPath);
    return { link, text: absolute ? target : path.relative(parent, target) || '.' };
  }

  /** A link target must be inside lexically, and its nearest existing ancestor canonically. */
  private async assertTargetInside(target: string, clientPath: string): Promise<void> {
    if (!this.contains(target)) throw new OutsideShareError(`the link target ${JSON.stringify(clientPath)}`);
    for (let probe = target; ; probe = path.dirname(probe)) {
      const real = await realpathOrMissing(probe);
      if (real !== undefined) {
        if (!this.contains(real)) throw new OutsideShareError(`the link target ${JSON.stringify(clientPath)}`);
        return;
      }
      if (probe === this.real || probe === path.dirname(probe)) return;
    }
  }

  /** Runs a path-resolving operation (resolution to syscall) under the shared side of the lock. */
  shared<T>(body: () => Promise<T>): Promise<T> {
    return this.lock.runExclusive(body, 1);
  }

  /** Runs a namespace change that can move a symlink into place (rename, symlink) alone. */
  exclusive<T>(body: () => Promise<T>): Promise<T> {
    return this.lock.runExclusive(body, LOCK_WEIGHT);
  }
}

/** `open(2)` flag that refuses a symlink as the last component (0 where the platform lacks it). */
export const O_NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0;
