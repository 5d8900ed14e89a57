/**
 * The runner's side of a transfer: the path rules over its file system, and files landing
 * under a temporary name that take their final name only once verified.
 */
import { chmod, mkdir, rename, rm, stat } from 'node:fs/promises';

import type { VerifyMode } from '../config/schema.js';
import { deviceDigests } from './deviceShell.js';
import type { PartialFiles, TransferGuard } from './guard.js';
import { failureOfErrno, type FileSide, type PathContext, pathError, type PathKind, runnerPaths, temporaryName } from './paths.js';
import type { RemoteRunner } from './types.js';
import { checkDigest, checkSize, sha256File } from './verify.js';

/** The runner's file system as a {@link FileSide}. */
export function runnerSide(context: PathContext): FileSide {
  return {
    where: 'runner',
    paths: runnerPaths,
    kinds: (paths) =>
      Promise.all(
        paths.map((p) =>
          stat(p).then(
            (info): PathKind => (info.isFile() ? 'file' : info.isDirectory() ? 'directory' : 'other'),
            (): PathKind => 'missing',
          ),
        ),
      ),
    makeDirectories: async (dir) => {
      try {
        await mkdir(dir, { recursive: true });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        // mkdir -p meeting a file on the way reports EEXIST or ENOTDIR.
        const kind = code === 'EEXIST' ? 'not-a-directory' : failureOfErrno(code);
        throw pathError(kind === 'failed' ? 'denied' : kind, 'create directory', dir, 'runner', context, error);
      }
    },
  };
}

/** Partial files on the runner for one transfer: removed (`rm -rf`) if it fails. */
export function runnerPartials(guard: TransferGuard): PartialFiles {
  return guard.partials('runner', async (paths) => {
    await Promise.all(paths.map((p) => rm(p, { force: true, recursive: true })));
  });
}

/** A runner file about to be written: its temporary name beside `final`, registered in `partials` until {@link commitRunnerFile}. */
export function stageRunnerFile(partials: PartialFiles, final: string): string {
  const temp = temporaryName(final, runnerPaths);
  partials.paths.add(temp);
  return temp;
}

/** Gives a verified runner file its permission bits and its final name (replacing what was there). */
export async function commitRunnerFile(partials: PartialFiles, temp: string, final: string, mode: number): Promise<void> {
  await chmod(temp, mode & 0o7777);
  await rename(temp, final);
  partials.paths.delete(temp);
}

/** A file that arrived on the runner under a temporary name. */
export interface LandedFile {
  temp: string;
  final: string;
  /** The device file it came from (for sha256). */
  remote: string;
  /** Bytes the device said it has. */
  size: number;
  /** Permission bits it gets. */
  mode: number;
  /** A pseudo-file (announced size 0, read to EOF): its content changes between reads, so no sha256 is compared. */
  pseudo?: boolean;
}

/**
 * Verifies files that arrived on the runner (size, or sha256 against the device's through
 * `runner`) and only then gives them their modes and final names. Returns how they were
 * verified (`size` when sha256 was asked but there is no runner to hash on the device).
 */
export async function commitRunnerFiles(
  guard: TransferGuard,
  partials: PartialFiles,
  files: readonly LandedFile[],
  verify: VerifyMode,
  runner: RemoteRunner | undefined,
  context: PathContext,
): Promise<VerifyMode> {
  let verified: VerifyMode = verify;
  if (verify !== 'none') {
    for (const file of files) checkSize(file.size, (await stat(file.temp)).size, `download of ${file.remote}`, context);
  }
  if (verify === 'sha256' && runner) {
    const hashed = files.filter((file) => !file.pseudo);
    const bytes = hashed.reduce((sum, file) => sum + file.size, 0);
    const [remote, local] = await guard.step(
      Promise.all([
        deviceDigests(
          runner,
          hashed.map((file) => file.remote),
          'sha256',
          bytes,
          context,
        ),
        Promise.all(hashed.map((file) => sha256File(file.temp))),
      ]),
      { quiet: true },
    );
    hashed.forEach((file, index) => checkDigest(remote[index] ?? 'unreadable', local[index]!, `download of ${file.remote}`, context));
  } else if (verify === 'sha256') {
    verified = 'size';
  }
  for (const file of files) {
    guard.check();
    await commitRunnerFile(partials, file.temp, file.final, file.mode);
  }
  return verified;
}
