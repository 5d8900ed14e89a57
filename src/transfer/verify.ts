/** Checks after transfers: sizes on both sides, optionally sha256 through a remote command. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { TransferError } from '../util/errors.js';
import type { ErrorProtocol } from '../util/errors.js';
import { shellQuote } from '../util/shellQuote.js';
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

export { shellQuote };

/** A remote path as a shell word; a leading `~/` stays expandable (the login directory). */
export function remoteShellPath(remote: string): string {
  if (remote === '~') return '"$HOME"';
  if (remote.startsWith('~/')) return `"$HOME"/${shellQuote(remote.slice(2))}`;
  return shellQuote(remote);
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

/**
 * Sizes or sha256 digests of a remote file, or of every file under a remote directory
 * (keys relative to it, `''` for a single file), through one command.
 */
export async function remoteTreeDigests(
  runner: RemoteRunner,
  remote: string,
  directory: boolean,
  mode: 'size' | 'sha256',
  context: { host: string; protocol: ErrorProtocol },
): Promise<Map<string, string>> {
  const where = remoteShellPath(remote);
  const tool = mode === 'size' ? 'wc -c' : 'sha256sum';
  const command = directory ? `cd ${where} && find . -type f -exec ${tool} {} +` : `${tool} < ${where}`;
  const result = await runner.run(command, { timeout: 300_000 });
  if (result.exitCode !== 0) {
    throw new TransferError(`cannot check ${remote} on the device: ${(result.stderr || result.stdout).trim() || `exit ${result.exitCode}`}.`, {
      ...context,
      hint: mode === 'sha256' ? 'Install sha256sum on the device, or use verify: "size".' : 'Check the remote path.',
    });
  }
  const digests = new Map<string, string>();
  if (!directory) {
    // `wc -c < file` prints the number alone; `sha256sum < file` prints "<hex>  -".
    const value = result.stdout.trim().split(/\s+/)[0];
    if (value) digests.set('', value);
    return digests;
  }
  for (const line of result.stdout.split('\n')) {
    const match = /^\s*(\S+)\s+\*?(\.\/.*)$/.exec(line);
    if (match) digests.set(match[2]!.slice(2), match[1]!); // wc's "total" lines do not start with ./
  }
  return digests;
}
