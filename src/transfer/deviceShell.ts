/**
 * The device's file system through POSIX sh commands (SSH exec or a telnet session): the
 * path rules' {@link FileSide} for methods that have no file protocol of their own (scp,
 * nc), why a path cannot be used (missing or denied), sizes and sha256 digests of device
 * files, and the verify-then-rename step that gives uploaded files their final names.
 * Every script works with BusyBox ash and dash.
 */
import type { VerifyMode } from '../config/schema.js';
import { TransferError, type TransferFailure } from '../util/errors.js';
import { devicePaths, type FileSide, type PathContext, pathError, type PathKind } from './paths.js';
import type { RemoteRunner } from './types.js';
import { checkDigest, remoteShellPath, sha256File } from './verify.js';

/** Bound on a short helper command (probe, mkdir, rename). */
export const HELPER_TIMEOUT_MS = 15_000;

/** Bound on hashing or measuring `bytes` on a device: small devices hash slowly (5 MB/s on top of 30 s). */
export function hashTimeout(bytes: number): number {
  return 30_000 + Math.ceil(bytes / 5_000);
}

/**
 * `lw_why PATH ACCESS` prints why PATH cannot be read (`r`) or written (`w`): `missing`,
 * `denied` or `not-a-directory`, from the nearest existing ancestor.
 */
const WHY = [
  'lw_why() {',
  '  if [ -e "$1" ]; then if [ "$2" = w ] && [ ! -d "$1" ]; then echo not-a-directory; else echo denied; fi; return; fi',
  '  d=$1; while :; do d=$(dirname -- "$d"); [ -e "$d" ] && break; case $d in /|.) break;; esac; done',
  '  if [ ! -d "$d" ]; then echo not-a-directory; elif [ ! -x "$d" ]; then echo denied;',
  '  elif [ "$2" = w ] && [ ! -w "$d" ]; then echo denied; else echo missing; fi',
  '}',
].join('\n');

const KIND = 'lw_kind() { if [ -d "$1" ]; then echo directory; elif [ -f "$1" ]; then echo file; elif [ -e "$1" ]; then echo other; else echo missing; fi; }';

/** Why `target` cannot be read (`r`) or written (`w`) on the device. */
export async function explainDevicePath(runner: RemoteRunner, target: string, access: 'r' | 'w'): Promise<TransferFailure> {
  const result = await runner.run(`${WHY}\nlw_why ${remoteShellPath(target)} ${access}`, { timeout: HELPER_TIMEOUT_MS });
  const answer = result.stdout.trim().split('\n').pop();
  return answer === 'missing' || answer === 'denied' || answer === 'not-a-directory' ? answer : 'failed';
}

/** The device as a {@link FileSide}, through shell commands. */
export function deviceShellSide(runner: RemoteRunner, context: PathContext): FileSide {
  return {
    where: 'device',
    paths: devicePaths,
    kinds: async (paths) => {
      const result = await runner.run(`${KIND}\nfor p in ${paths.map(remoteShellPath).join(' ')}; do lw_kind "$p"; done`, { timeout: HELPER_TIMEOUT_MS });
      const kinds = result.stdout.trim().split('\n');
      if (result.exitCode !== 0 || kinds.length !== paths.length) throw shellFailure('look at', paths.join(', '), result, context);
      return kinds.map((kind): PathKind => (kind === 'directory' || kind === 'file' || kind === 'other' ? kind : 'missing'));
    },
    makeDirectories: async (dir) => {
      const where = remoteShellPath(dir);
      const result = await runner.run(`${WHY}\nmkdir -p -- ${where} 2>/dev/null && [ -d ${where} ] && echo LW_OK || lw_why ${where} w`, {
        timeout: HELPER_TIMEOUT_MS,
      });
      const answer = result.stdout.trim().split('\n').pop();
      if (answer === 'LW_OK') return;
      const kind = answer === 'missing' || answer === 'denied' || answer === 'not-a-directory' ? answer : 'denied';
      throw pathError(kind, 'create directory', dir, 'device', context);
    },
  };
}

function shellFailure(action: string, what: string, result: { exitCode: number | null; stdout: string; stderr: string }, context: PathContext): TransferError {
  return new TransferError(`cannot ${action} ${what} on the device: ${(result.stderr || result.stdout).trim().slice(0, 300) || `exit ${result.exitCode}`}.`, {
    ...context,
    hint: 'The device needs a POSIX shell with mkdir, mv, chmod, wc and sha256sum (coreutils or BusyBox).',
  });
}

/** Defines `lw_h`, printing the sha256 (hex) of its stdin, or `LW_NOHASH` and exit when the device has no tool for it. */
const HASHER =
  'if command -v sha256sum >/dev/null 2>&1; then lw_h() { sha256sum | cut -c1-64; }; ' +
  'elif command -v openssl >/dev/null 2>&1; then lw_h() { openssl dgst -sha256 -r | cut -c1-64; }; ' +
  'else echo LW_NOHASH; exit 0; fi';

/** Shell that prints `LW_V <index> <value>` for a file (its size, or its sha256) and sets `lw_bad` when it differs from `expected`. */
function measure(mode: 'size' | 'sha256', index: number, file: string, expected?: string): string {
  const where = remoteShellPath(file);
  const value = mode === 'size' ? `wc -c < ${where} | tr -d ' '` : `lw_h < ${where}`;
  const check = expected === undefined ? '' : `; [ "$v" = ${expected} ] || lw_bad=1`;
  return `if [ -r ${where} ]; then v=$(${value}); else v=-; fi; echo "LW_V ${index} $v"${check}`;
}

function parseValues(stdout: string, count: number): Array<string | undefined> {
  const values: Array<string | undefined> = Array.from({ length: count });
  for (const line of stdout.split('\n')) {
    const match = /^LW_V (\d+) (\S+)\s*$/.exec(line.trim());
    if (match && match[2] !== '-') values[Number(match[1])] = match[2];
  }
  return values;
}

const NO_HASH_HINT = 'Install sha256sum (coreutils or BusyBox) or openssl on the device, or use verify: "size".';

/** Sizes (decimal) or sha256 digests (hex) of device files, in order; `undefined` where a file cannot be read. */
export async function deviceDigests(
  runner: RemoteRunner,
  files: readonly string[],
  mode: 'size' | 'sha256',
  bytes: number,
  context: PathContext,
): Promise<Array<string | undefined>> {
  if (files.length === 0) return [];
  const script = [mode === 'sha256' ? HASHER : '', ...files.map((file, index) => measure(mode, index, file))].filter(Boolean).join('\n');
  const result = await runner.run(script, { timeout: hashTimeout(bytes) });
  if (result.stdout.includes('LW_NOHASH'))
    throw new TransferError('cannot verify by sha256: the device has neither sha256sum nor openssl.', { ...context, hint: NO_HASH_HINT });
  return parseValues(result.stdout, files.length);
}

/** An uploaded file: where it came from on the runner, and its temporary name on the device. */
export interface UploadedFile {
  local: string;
  temp: string;
}

/** The sha256 of uploaded files on the device (under their temporary names) and on the runner, in order. */
export async function uploadDigests(
  runner: RemoteRunner,
  files: readonly UploadedFile[],
  bytes: number,
  context: PathContext,
): Promise<{ device: Array<string | undefined>; local: string[] }> {
  const [device, local] = await Promise.all([
    deviceDigests(
      runner,
      files.map((file) => file.temp),
      'sha256',
      bytes,
      context,
    ),
    Promise.all(files.map((file) => sha256File(file.local))),
  ]);
  return { device, local };
}

/** Fails on the first uploaded file whose device digest differs from the runner's. */
export function checkUploadDigests(
  files: readonly UploadedFile[],
  digests: { device: Array<string | undefined>; local: string[] },
  context: PathContext,
): void {
  files.forEach((file, index) => checkDigest(digests.local[index]!, digests.device[index] ?? 'unreadable', `upload of ${file.local}`, context));
}

/** Sizes or sha256 digests of every regular file under a device directory, by `/`-separated relative path. */
export async function deviceTreeDigests(
  runner: RemoteRunner,
  dir: string,
  mode: 'size' | 'sha256',
  bytes: number,
  context: PathContext,
): Promise<Map<string, string>> {
  const value = mode === 'size' ? `$(wc -c < "$f" | tr -d ' ')` : '$(lw_h < "$f")';
  // One line per file, value first: names may hold spaces (not newlines).
  const script = `${mode === 'sha256' ? `${HASHER}\n` : ''}cd ${remoteShellPath(dir)} || exit 1\nfind . -type f | while IFS= read -r f; do echo "LW_T ${value} $f"; done`;
  const result = await runner.run(script, { timeout: hashTimeout(bytes) });
  if (result.stdout.includes('LW_NOHASH'))
    throw new TransferError('cannot verify by sha256: the device has neither sha256sum nor openssl.', { ...context, hint: NO_HASH_HINT });
  if (result.exitCode !== 0) throw shellFailure('list', dir, result, context);
  const digests = new Map<string, string>();
  for (const line of result.stdout.split('\n')) {
    const match = /^LW_T (\S+) \.\/(.*)$/.exec(line.replace(/\r$/, ''));
    if (match) digests.set(match[2]!, match[1]!);
  }
  return digests;
}

/** One uploaded file: where it was written, where it goes, its bits and what it must measure. */
export interface DeviceCommit {
  temp: string;
  final: string;
  mode: number;
  /** Size in bytes, or sha256 hex, per the verify mode; ignored for `none`. */
  expected: string;
}

/**
 * Verifies uploaded files under their temporary names and, only when every one matches,
 * gives them their modes and final names; `directories` are created first and `cleanup`
 * paths removed after. One command for all of it. Mismatches and failed renames are
 * {@link TransferError}s naming the file.
 */
export async function commitDeviceFiles(
  runner: RemoteRunner,
  commits: readonly DeviceCommit[],
  options: { verify: VerifyMode; bytes: number; directories?: readonly string[]; cleanup?: readonly string[]; what: string },
  context: PathContext,
): Promise<void> {
  const { verify } = options;
  const lines: string[] = [];
  if (verify === 'sha256') lines.push(HASHER);
  if (verify !== 'none') {
    // Every file is measured and compared before anything is renamed; the values are printed for the error message.
    lines.push(
      'lw_bad=',
      ...commits.map((commit, index) => measure(verify, index, commit.temp, commit.expected)),
      '[ -z "$lw_bad" ] || { echo LW_MISMATCH; exit 0; }',
    );
  }
  if (options.directories && options.directories.length > 0)
    lines.push(`mkdir -p -- ${options.directories.map(remoteShellPath).join(' ')} || { echo LW_FAIL mkdir; exit 0; }`);
  lines.push(
    'lw_m() { if [ -d "$4" ]; then echo "LW_FAIL $1 isdir"; return 1; fi; chmod "$2" "$3" && mv -f -- "$3" "$4" || { echo "LW_FAIL $1"; return 1; }; }',
    ...commits.map(
      (commit, index) => `lw_m ${index} ${(commit.mode & 0o7777).toString(8)} ${remoteShellPath(commit.temp)} ${remoteShellPath(commit.final)} || exit 0`,
    ),
  );
  if (options.cleanup && options.cleanup.length > 0) lines.push(`rm -rf -- ${options.cleanup.map(remoteShellPath).join(' ')}`);
  lines.push('echo LW_COMMITTED');
  const result = await runner.run(lines.join('\n'), { timeout: verify === 'sha256' ? hashTimeout(options.bytes) : HELPER_TIMEOUT_MS + commits.length * 100 });
  if (result.stdout.includes('LW_COMMITTED')) return;
  if (result.stdout.includes('LW_NOHASH'))
    throw new TransferError(`${options.what}: cannot verify by sha256: the device has neither sha256sum nor openssl.`, { ...context, hint: NO_HASH_HINT });
  if (result.stdout.includes('LW_MISMATCH')) {
    const values = parseValues(result.stdout, commits.length);
    const index = commits.findIndex((commit, i) => values[i] !== commit.expected);
    const commit = commits[Math.max(0, index)]!;
    const actual = values[Math.max(0, index)];
    throw verify === 'size'
      ? new TransferError(`${options.what}: ${commit.final} is incomplete: ${actual ?? 'no'} bytes arrived of ${commit.expected}; it was not given its name.`, {
          ...context,
          hint: 'Check free space on the device and the connection, then retry.',
          kind: 'incomplete',
        })
      : new TransferError(
          `${options.what}: ${commit.final} arrived corrupted: sha256 ${actual ?? 'unreadable'} instead of ${commit.expected}; it was not given its name.`,
          {
            ...context,
            hint: 'Transfer it again; check the storage of the device.',
            kind: 'corrupted',
          },
        );
  }
  const failed = /LW_FAIL (\d+)( isdir)?/.exec(result.stdout);
  if (failed?.[2]) throw pathError('is-a-directory', 'replace', commits[Number(failed[1])]!.final, 'device', context);
  const target = failed ? commits[Number(failed[1])]!.final : (options.directories ?? []).join(', ');
  throw shellFailure('give the transferred file its name', target || options.what, result, context);
}

/** Removes device paths (partial files, staging directories); errors are the caller's to ignore. */
export async function removeDevicePaths(runner: RemoteRunner, paths: readonly string[]): Promise<void> {
  const result = await runner.run(`rm -rf -- ${paths.map(remoteShellPath).join(' ')}`, { timeout: HELPER_TIMEOUT_MS });
  if (result.exitCode !== 0) throw new Error(result.stderr.trim() || `exit ${result.exitCode}`);
}
