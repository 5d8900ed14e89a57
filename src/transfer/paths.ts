/**
 * The path rules every transfer method follows (README "Transfer path rules"), written
 * once: each method describes its destination side as a {@link FileSide} (SFTP requests,
 * FTP commands, shell commands on the device, the runner's file system) and
 * {@link placeDestination} decides where the source lands. Also the temporary names files
 * are written under before they take their final name.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';

import type { ErrorProtocol, TransferFailure } from '../util/errors.js';
import { TransferError } from '../util/errors.js';
import { localPathOf, type LocalSource, sourceFiles } from './localTree.js';

/** Maps a runner file-system error code to a failure kind. */
export function failureOfErrno(code: string | undefined): TransferFailure {
  switch (code) {
    case 'ENOENT':
      return 'missing';
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return 'denied';
    case 'ENOTDIR':
      return 'not-a-directory';
    case 'EISDIR':
      return 'is-a-directory';
    default:
      return 'failed';
  }
}

const FAILURE_TEXT: Partial<Record<TransferFailure, string>> = {
  missing: 'no such file or directory',
  denied: 'permission denied',
  'not-a-directory': 'a path component is not a directory',
  'is-a-directory': 'it is a directory',
  unsupported: 'it is neither a regular file nor a directory',
};

/** Words for a failure kind of a path ("permission denied"), for messages. */
export function failureText(kind: TransferFailure): string {
  return FAILURE_TEXT[kind] ?? kind;
}

/** What is at a path: `other` is anything but a regular file or a directory (device, pipe, socket). */
export type PathKind = 'file' | 'directory' | 'missing' | 'other';

/** Path arithmetic of one side: POSIX for the device, the runner's own for the runner. */
export interface PathOps {
  join(...parts: string[]): string;
  dirname(p: string): string;
  basename(p: string): string;
  /** Whether `p` ends with a separator (names a directory). */
  endsWithSeparator(p: string): boolean;
}

export const devicePaths: PathOps = {
  join: (...parts) => path.posix.join(...parts),
  dirname: (p) => path.posix.dirname(p),
  basename: (p) => path.posix.basename(p),
  endsWithSeparator: (p) => p.endsWith('/'),
};

export const runnerPaths: PathOps = {
  join: (...parts) => path.join(...parts),
  dirname: (p) => path.dirname(p),
  basename: (p) => path.basename(p),
  endsWithSeparator: (p) => p.endsWith('/') || p.endsWith(path.sep),
};

/** The side a transfer writes to, as the path rules need it. */
export interface FileSide {
  readonly where: 'device' | 'runner';
  readonly paths: PathOps;
  /** What is at each of `paths` (links followed), in one round trip where the protocol allows; what cannot be seen is `missing`. */
  kinds(paths: readonly string[]): Promise<PathKind[]>;
  /** Creates `dir` and its missing parents; throws a {@link TransferError} naming the path and why (`denied`, `not-a-directory`). */
  makeDirectories(dir: string): Promise<void>;
}

/** Who reports a path problem. */
export interface PathContext {
  host: string;
  protocol: ErrorProtocol;
}

const PATH_HINTS: Partial<Record<TransferFailure, string>> = {
  missing: 'Check the path; relative paths start at the login directory on the device and at the working directory on the runner.',
  denied: 'Log in as a user who may read or write there, or pick another path.',
  'not-a-directory': 'A component of the path is a file; pick another path.',
  'is-a-directory': 'Name the file inside the directory, or remove the directory.',
  unsupported: 'labwright writes through a temporary name and a rename: write to a regular file and copy it there with a command.',
};

/** A path problem as a TransferError: `host (method): cannot <action> <path> on the device: permission denied.` */
export function pathError(
  kind: TransferFailure,
  action: string,
  target: string,
  where: 'device' | 'runner',
  context: PathContext,
  cause?: unknown,
): TransferError {
  return new TransferError(`cannot ${action} ${target} on the ${where}: ${failureText(kind)}.`, { ...context, hint: PATH_HINTS[kind], cause, kind });
}

/** `~` and `~/x` on the device mean the login directory; anything else is taken as it is. */
export function expandHome(remote: string, home: string): string {
  if (remote === '~') return home;
  if (remote.startsWith('~/')) return path.posix.join(home, remote.slice(2));
  return remote;
}

/**
 * Where a source lands on `side`, creating missing parent directories:
 * - a directory source: into `destination` itself (created if missing, merged if it exists);
 *   an existing non-directory there is an error;
 * - a file: at `destination`, or inside it under the source's name when it ends with a
 *   separator or is an existing directory; an existing file is replaced; a directory at
 *   the final path, or a device or pipe, is an error.
 */
export async function placeDestination(
  side: FileSide,
  destination: string,
  source: { directory: boolean; name: string },
  context: PathContext,
): Promise<string> {
  const { paths, where } = side;
  if (source.directory) {
    const [kind] = await side.kinds([destination]);
    if (kind === 'file' || kind === 'other') throw pathError('not-a-directory', 'write the directory', destination, where, context);
    if (kind === 'missing') await side.makeDirectories(destination);
    return destination;
  }
  const parent = paths.dirname(destination);
  const inside = paths.join(destination, source.name);
  const [here, parentKind, insideKind] = await side.kinds([destination, parent, inside]);
  if (paths.endsWithSeparator(destination) || here === 'directory') {
    if (here === 'file' || here === 'other') throw pathError('not-a-directory', 'write into', destination, where, context);
    if (insideKind === 'directory') throw pathError('is-a-directory', 'replace', inside, where, context);
    if (insideKind === 'other') throw pathError('unsupported', 'replace the special file', inside, where, context);
    if (here === 'missing') await side.makeDirectories(destination);
    return inside;
  }
  if (here === 'other') throw pathError('unsupported', 'replace the special file', destination, where, context);
  if (parentKind === 'file' || parentKind === 'other') throw pathError('not-a-directory', 'write', destination, where, context);
  if (parentKind === 'missing') await side.makeDirectories(parent);
  return destination;
}

/** The temporary name a file is written under, in its final directory: `.<name>.lw-<random>.part`. */
export function temporaryName(final: string, paths: PathOps): string {
  const name = paths.basename(final).slice(0, 200);
  return paths.join(paths.dirname(final), `.${name}.lw-${randomBytes(4).toString('hex')}.part`);
}

/** One file of an upload: where it is read, where it is written first, and where it ends. */
export interface UploadFile {
  /** Runner path. */
  local: string;
  /** `/`-separated path below the source root (`''` for a single file). */
  relative: string;
  temp: string;
  final: string;
  size: number;
  /** Permission bits the final file gets. */
  mode: number;
}

/**
 * The files of an upload of `source` (read from `localPath`) landing at `root` on the
 * device: each under a temporary name beside its final one, or below `staging` when the
 * method writes a whole tree at once (nc's tar).
 */
export function uploadFiles(source: LocalSource, localPath: string, root: string, mode: number | undefined, staging?: string): UploadFile[] {
  return sourceFiles(source).map((entry) => {
    const final = entry.relative ? devicePaths.join(root, entry.relative) : root;
    const temp = staging ? devicePaths.join(staging, entry.relative) : temporaryName(final, devicePaths);
    return { local: localPathOf(localPath, entry.relative), relative: entry.relative, temp, final, size: entry.size, mode: mode ?? entry.mode };
  });
}
