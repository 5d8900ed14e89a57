/** Checks after transfers: sizes on both sides, optionally sha256 through a remote command. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { TransferError } from '../util/errors.js';
import type { ErrorProtocol } from '../util/errors.js';
import type { RemoteRunner } from './types.js';

/** sha256 of a local file, hex. */
export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** A path as one single-quoted POSIX shell word. */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** sha256 of a remote file through `sha256sum` (or `openssl`), hex. */
export async function remoteSha256(runner: RemoteRunner, file: string, context: { host: string; protocol: ErrorProtocol }): Promise<string> {
  const quoted = shellQuote(file);
  const result = await runner.run(`sha256sum -- ${quoted} 2>/dev/null || openssl dgst -sha256 -r ${quoted}`, { timeout: 300_000 });
  const hex = /^([0-9a-f]{64})\b/m.exec(result.stdout)?.[1];
  if (result.exitCode !== 0 || !hex) {
    throw new TransferError(`cannot compute the sha256 of ${file} on the device (${(result.stderr || result.stdout).trim() || `exit ${result.exitCode}`}).`, {
      ...context,
      hint: 'Install sha256sum (coreutils/busybox) on the device, or use verify: "size".',
    });
  }
  return hex;
}

/** Throws a TransferError when the sizes differ. */
export function checkSize(expected: number, actual: number, what: string, context: { host: string; protocol: ErrorProtocol }): void {
  if (expected !== actual) {
    throw new TransferError(`${what} is incomplete: ${actual} bytes arrived of ${expected}.`, {
      ...context,
      hint: 'Check free space on the destination and the connection; nothing was retried.',
    });
  }
}

/** Throws a TransferError when the digests differ. */
export function checkDigest(expected: string, actual: string, what: string, context: { host: string; protocol: ErrorProtocol }): void {
  if (expected !== actual) {
    throw new TransferError(`${what} arrived corrupted: sha256 ${actual} instead of ${expected}.`, { ...context, hint: 'Transfer it again; check the storage of the device.' });
  }
}
