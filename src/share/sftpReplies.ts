/**
 * How filesystem results become SFTP v3 replies: attributes, `ls -l` lines for READDIR,
 * and status codes for errors (errno mapped as OpenSSH's sftp-server maps it).
 */
import type { Stats } from 'node:fs';

import type { Attributes } from 'ssh2';
import ssh2 from 'ssh2';

import { BadPathError, OutsideShareError } from './shareRoot.js';

/** SFTP v3 status codes (ssh2's `utils.sftp.STATUS_CODE`). */
export const STATUS = ssh2.utils.sftp.STATUS_CODE;

/** A refused write on a read-only share. */
export class ReadOnlyShareError extends Error {
  readonly code = 'LW_READ_ONLY';
  constructor() {
    super('the share is read-only');
    this.name = 'ReadOnlyShareError';
  }
}

/** A request the share answers with a given status and message. */
export class SftpStatusError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'SftpStatusError';
  }
}

/** SFTP attributes of a stat result (times in whole seconds, as v3 carries them). */
export function attrsOf(stats: Stats): Attributes {
  return {
    mode: stats.mode,
    uid: stats.uid,
    gid: stats.gid,
    size: stats.size,
    atime: Math.floor(stats.atimeMs / 1000),
    mtime: Math.floor(stats.mtimeMs / 1000),
  };
}

const TYPE_CHARS: Array<[number, string]> = [
  [0o140000, 's'],
  [0o120000, 'l'],
  [0o100000, '-'],
  [0o060000, 'b'],
  [0o040000, 'd'],
  [0o020000, 'c'],
  [0o010000, 'p'],
];

/** `drwxr-xr-x`-style permission string. */
export function modeString(mode: number): string {
  const type = TYPE_CHARS.find(([bits]) => (mode & 0o170000) === bits)?.[1] ?? '?';
  const triple = (shift: number, special: number, specialChar: string) => {
    const r = mode & (0o4 << shift) ? 'r' : '-';
    const w = mode & (0o2 << shift) ? 'w' : '-';
    const executable = (mode & (0o1 << shift)) !== 0;
    const x = mode & special ? (executable ? specialChar : specialChar.toUpperCase()) : executable ? 'x' : '-';
    return r + w + x;
  };
  return type + triple(6, 0o4000, 's') + triple(3, 0o2000, 's') + triple(0, 0o1000, 't');
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** The `ls -l` line OpenSSH's sftp shows for `ls -l` (numeric owner and group). */
export function longname(name: string, stats: Stats, now = Date.now()): string {
  const date = stats.mtime;
  const day = String(date.getDate()).padStart(2, ' ');
  // Like ls: time of day within six months, the year otherwise.
  const recent = Math.abs(now - stats.mtimeMs) < 182 * 24 * 3600 * 1000;
  const when = recent ? `${String(date.getHours()).padStart(2, '0')}:${String(date.getMinutes()).padStart(2, '0')}` : ` ${date.getFullYear()}`;
  return `${modeString(stats.mode)} ${String(stats.nlink).padStart(3)} ${String(stats.uid).padEnd(8)} ${String(stats.gid).padEnd(8)} ${String(stats.size).padStart(8)} ${MONTHS[date.getMonth()]} ${day} ${when.padStart(5)} ${name}`;
}

/** Status code and message for anything a request handler threw. */
export function statusOf(error: unknown): { code: number; message: string } {
  if (error instanceof SftpStatusError) return { code: error.status, message: error.message };
  if (error instanceof OutsideShareError || error instanceof ReadOnlyShareError) return { code: STATUS.PERMISSION_DENIED, message: error.message };
  if (error instanceof BadPathError) return { code: STATUS.BAD_MESSAGE, message: error.message };
  const code = (error as NodeJS.ErrnoException | null)?.code;
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
    case 'EBADF':
    case 'ELOOP':
      return { code: STATUS.NO_SUCH_FILE, message: 'No such file' };
    case 'EPERM':
    case 'EACCES':
    case 'EFAULT':
      return { code: STATUS.PERMISSION_DENIED, message: 'Permission denied' };
    case 'ENAMETOOLONG':
    case 'EINVAL':
    case 'ERR_INVALID_ARG_VALUE':
      return { code: STATUS.BAD_MESSAGE, message: 'Bad message' };
    case 'ENOSYS':
      return { code: STATUS.OP_UNSUPPORTED, message: 'Operation unsupported' };
    case 'EEXIST':
      return { code: STATUS.FAILURE, message: 'File exists' };
    case 'ENOTEMPTY':
      return { code: STATUS.FAILURE, message: 'Directory not empty' };
    case 'EISDIR':
      return { code: STATUS.FAILURE, message: 'Is a directory' };
    case 'ENOSPC':
      return { code: STATUS.FAILURE, message: 'No space left on device' };
    default:
      return { code: STATUS.FAILURE, message: 'Failure' };
  }
}
