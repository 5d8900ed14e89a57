/**
 * Host key policies: `strict` (the key must be in a known_hosts file), `accept-new`
 * (unknown hosts are pinned to a file, changed keys refused), `off` (explicit opt-out).
 */
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

import lockfile from 'proper-lockfile';

import type { HostKeyPolicy } from '../config/schema.js';
import { ConnectionError } from '../util/errors.js';
import { expandHome } from '../util/paths.js';
import { fingerprint, keyTypeOf, knownHostLine, knownHostName, type KnownHostVerdict, lookupHostKey, readKnownHosts } from './knownHosts.js';

/** What the verifier needs to know about the connection. */
export interface HostKeyCheck {
  /** Lab host name, for messages. */
  host: string;
  /** Address and port as known_hosts records them (as reached from the runner or the hop). */
  address: string;
  port: number;
  policy: HostKeyPolicy;
  knownHosts: readonly string[];
  pinFile?: string | undefined;
}

function hostKeyError(check: HostKeyCheck, detail: string, hint: string): ConnectionError {
  return new ConnectionError('host-key', detail, { host: check.host, protocol: 'ssh', hint });
}

/** What the known_hosts files a check consults say about `key`. */
export interface HostKeyStanding {
  verdict: KnownHostVerdict;
  /** The files consulted, `~` expanded. */
  files: string[];
  /** Those of them that exist. */
  found: string[];
  /** `ssh-ed25519 SHA256:...`, for messages. */
  presented: string;
}

/** Looks `key` up in the files the check consults (its known_hosts files, plus the pin file under `accept-new`). */
export async function hostKeyStanding(check: HostKeyCheck, key: Buffer): Promise<HostKeyStanding> {
  const files = checkedFiles(check);
  const { entries, found } = await readKnownHosts(files);
  return { verdict: lookupHostKey(entries, check.address, check.port, key), files, found, presented: `${keyTypeOf(key)} ${fingerprint(key)}` };
}

/**
 * Verifies `key` under the check's policy. Resolves when the key is accepted (pinning it
 * first under `accept-new`), rejects with a ConnectionError of kind `host-key` otherwise.
 */
export async function verifyHostKey(check: HostKeyCheck, key: Buffer): Promise<void> {
  if (check.policy === 'off') return;
  const name = knownHostName(check.address, check.port);
  const { verdict, files, found, presented } = await hostKeyStanding(check, key);
  switch (verdict.kind) {
    case 'match':
      return;
    case 'revoked':
      throw hostKeyError(
        check,
        `the host key of ${name} (${presented}) is marked @revoked in ${verdict.entry.file}:${verdict.entry.line}.`,
        'Do not connect: the key was withdrawn. Re-key the device and update known_hosts.',
      );
    case 'mismatch': {
      const known = verdict.known.map((entry) => `${entry.keyType} ${fingerprint(entry.key)} (${entry.file}:${entry.line})`).join('; ');
      throw hostKeyError(
        check,
        `HOST KEY MISMATCH for ${name}: the server presented ${presented}, but known_hosts has ${known}. Someone may be intercepting the connection, or the device was re-imaged.`,
        `If the device was re-imaged, remove the old entry with \`ssh-keygen -R '${name}' -f ${verdict.known[0]!.file}\` and connect again (hostKeyPolicy 'accept-new' pins the new key).`,
      );
    }
    case 'unknown':
      if (check.policy === 'strict') {
        throw hostKeyError(
          check,
          `the host key of ${name} (${presented}) is not in ${found.length > 0 ? `the known_hosts files (${found.join(', ')})` : `any known_hosts file (none of ${files.join(', ')} exists)`}.`,
          `Run \`npx labwright trust ${check.host}\` to see its fingerprint and pin it to ${check.pinFile ?? check.knownHosts[0] ?? '~/.ssh/known_hosts'}, or set ssh.hostKeyPolicy: 'accept-new' to pin keys on first use.`,
        );
      }
      await pinHostKey(check, key);
  }
}

/** The files a check consults: its known_hosts files, plus the pin file under `accept-new` (part of what the device is held to). */
function checkedFiles(check: HostKeyCheck): string[] {
  return [...new Set([...check.knownHosts, ...(check.policy === 'accept-new' && check.pinFile ? [check.pinFile] : [])].map(expandHome))];
}

/** Where keys of this check are pinned: `pinFile`, else the first known_hosts file. */
export function pinFileOf(check: Pick<HostKeyCheck, 'pinFile' | 'knownHosts'>): string {
  return expandHome(check.pinFile ?? check.knownHosts[0] ?? '~/.ssh/known_hosts');
}

/**
 * Appends the key to the pin file under a lock, unless another process pinned it
 * meanwhile; refuses when a different key is known for the host. Creates the file's
 * folder with mode 0700 and the file with mode 0600, as OpenSSH wants `~/.ssh`.
 * Returns the file written to.
 */
export async function pinHostKey(check: HostKeyCheck, key: Buffer): Promise<string> {
  const files = checkedFiles(check);
  const pinFile = pinFileOf(check);
  await mkdir(path.dirname(pinFile), { recursive: true, mode: 0o700 });
  await writeFile(pinFile, '', { flag: 'a', mode: 0o600 });
  // Several Playwright workers may meet a new device at once: one pins, the others re-read.
  const release = await lockfile.lock(pinFile, { retries: { retries: 50, minTimeout: 20, maxTimeout: 200 }, stale: 10_000 });
  try {
    const { entries } = await readKnownHosts([...new Set([...files, pinFile])]);
    const verdict = lookupHostKey(entries, check.address, check.port, key);
    if (verdict.kind === 'match') return pinFile;
    if (verdict.kind !== 'unknown') {
      const name = knownHostName(check.address, check.port);
      throw hostKeyError(
        check,
        `another key is already known for ${name} (${verdict.kind === 'mismatch' ? verdict.known.map((entry) => `${entry.file}:${entry.line}`).join(', ') : 'revoked'}); the presented one was not pinned.`,
        `If the device was re-imaged, remove the old entry with \`ssh-keygen -R '${name}' -f ${pinFile}\` first.`,
      );
    }
    await appendFile(pinFile, `${knownHostLine(check.address, check.port, key)}\n`);
    return pinFile;
  } finally {
    await release();
  }
}
