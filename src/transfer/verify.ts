/** Checks after transfers (sizes and sha256 of runner files), and the shell quoting of device paths. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';

import type { ErrorProtocol } from '../util/errors.js';
import { TransferError } from '../util/errors.js';
import { shellQuote } from '../util/shellQuote.js';

/** sha256 of a runner file, hex. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file, { highWaterMark: 1024 * 1024 }), hash);
  return hash.digest('hex');
}

/** A remote path as a shell word; a leading `~/` stays expandable (the login directory). */
export function remoteShellPath(remote: string): string {
  if (remote === '~') return '"$HOME"';
  if (remote.startsWith('~/')) return `"$HOME"/${shellQuote(remote.slice(2))}`;
  return shellQuote(remote);
}

/** Throws an `incomplete` TransferError when the sizes differ. */
export function checkSize(expected: number, actual: number, what: string, context: { host: string; protocol: ErrorProtocol }): void {
  if (expected !== actual) {
    throw new TransferError(`${what} is incomplete: ${actual} bytes arrived of ${expected}.`, {
      ...context,
      hint: 'Check free space on the destination and the connection; nothing was retried.',
      kind: 'incomplete',
    });
  }
}

/** Throws a `corrupted` TransferError when the digests differ. */
export function checkDigest(expected: string, actual: string, what: string, context: { host: string; protocol: ErrorProtocol }): void {
  if (expected !== actual) {
    throw new TransferError(`${what} arrived corrupted: sha256 ${actual} instead of ${expected}.`, {
      ...context,
      hint: 'Transfer it again; check the storage of the device.',
      kind: 'corrupted',
    });
  }
}
