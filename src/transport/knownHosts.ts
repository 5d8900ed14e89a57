/**
 * OpenSSH known_hosts files: plain and hashed (`|1|salt|hash`) host names, `[host]:port`
 * for non-standard ports, wildcards and negations, `@revoked` keys. `@cert-authority`
 * lines are skipped (labwright does not verify host certificates).
 */
import { createHash, createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';

/** One usable line of a known_hosts file. */
export interface KnownHostLine {
  marker: 'revoked' | 'cert-authority' | undefined;
  patterns: string;
  keyType: string;
  key: Buffer;
  file: string;
  line: number;
}

/** The outcome of looking a host key up. */
export type KnownHostVerdict =
  { kind: 'match'; entry: KnownHostLine } | { kind: 'revoked'; entry: KnownHostLine } | { kind: 'mismatch'; known: KnownHostLine[] } | { kind: 'unknown' };

/** The name a host is recorded under: `host` on port 22, `[host]:port` otherwise. */
export function knownHostName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

/** `SHA256:<base64>` as OpenSSH prints it. */
export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The key type from an SSH public key blob (`ssh-ed25519`, `ecdsa-sha2-nistp256`, ...). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const length = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + length).toString('latin1');
}

/** Parses known_hosts text; malformed lines are skipped (as OpenSSH does). */
export function parseKnownHosts(text: string, file = '(text)'): KnownHostLine[] {
  const entries: KnownHostLine[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const trimmed = raw.trim();
    if (!trimmed || trimmed.startsWith('#')) return;
    const fields = trimmed.split(/\s+/);
    let marker: KnownHostLine['marker'];
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority') {
      marker = fields[0] === '@revoked' ? 'revoked' : 'cert-authority';
      fields.shift();
    } else if (fields[0]?.startsWith('@')) {
      return;
    }
    const [patterns, keyType, base64] = fields;
    if (!patterns || !keyType || !base64) return;
    const key = Buffer.from(base64, 'base64');
    if (key.length === 0) return;
    entries.push({ marker, patterns, keyType, key, file, line: index + 1 });
  });
  return entries;
}

function wildcardToRegExp(pattern: string): RegExp {
  const source = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${source}$`, 'i');
}

function hashedMatches(pattern: string, name: string): boolean {
  const [, magic, salt, hash] = pattern.split('|');
  if (magic !== '1' || !salt || !hash) return false;
  const digest = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
  return digest === hash;
}

/** Whether a line's host patterns cover `name` (`host` or `[host]:port`). */
export function patternsMatch(patterns: string, name: string): boolean {
  if (patterns.startsWith('|')) return hashedMatches(patterns, name);
  let matched = false;
  for (const raw of patterns.split(',')) {
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    if (!wildcardToRegExp(pattern).test(name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

/** Looks up the key a server presented for `address:port`. */
export function lookupHostKey(entries: readonly KnownHostLine[], address: string, port: number, key: Buffer): KnownHostVerdict {
  const name = knownHostName(address, port);
  const revoked = entries.find((entry) => entry.marker === 'revoked' && entry.key.equals(key));
  if (revoked) return { kind: 'revoked', entry: revoked };
  const forHost = entries.filter((entry) => entry.marker === undefined && patternsMatch(entry.patterns, name));
  const match = forHost.find((entry) => entry.key.equals(key));
  if (match) return { kind: 'match', entry: match };
  return forHost.length > 0 ? { kind: 'mismatch', known: forHost } : { kind: 'unknown' };
}

/** Reads and parses several known_hosts files; missing files count as empty. */
export async function readKnownHosts(files: readonly string[]): Promise<{ entries: KnownHostLine[]; found: string[] }> {
  const entries: KnownHostLine[] = [];
  const found: string[] = [];
  for (const file of files) {
    try {
      entries.push(...parseKnownHosts(await readFile(file, 'utf8'), file));
      found.push(file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return { entries, found };
}

/** A known_hosts line for pinning `key` of `address:port`. */
export function knownHostLine(address: string, port: number, key: Buffer): string {
  return `${knownHostName(address, port)} ${keyTypeOf(key)} ${key.toString('base64')}`;
}
