/** One-time share keys always parse (ssh2's own generator fails about one key in 256). */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { expect, test } from '@playwright/test';
import type { ParsedKey } from 'ssh2';
import ssh2 from 'ssh2';

import { oneTimeKeyPair } from '../../src/share/oneTimeKeys.js';

function parse(key: string): ParsedKey {
  const parsed = ssh2.utils.parseKey(key);
  if (parsed instanceof Error) throw parsed;
  return Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed;
}

test('3000 generated pairs all parse, and each private key signs for its public key', () => {
  for (let i = 0; i < 3000; i++) {
    const pair = oneTimeKeyPair(`k${i}`);
    const privateKey = parse(pair.privateKey);
    const publicKey = parse(pair.publicKey);
    expect(privateKey.type).toBe('ssh-ed25519');
    expect(privateKey.getPublicSSH().equals(publicKey.getPublicSSH())).toBe(true);
    if (i % 100 === 0) {
      const data = Buffer.from(`challenge ${i}`);
      expect(publicKey.verify(data, privateKey.sign(data))).toBe(true);
    }
  }
});

test("OpenSSH's ssh-keygen reads the private key and derives the same public key", () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-keys-'));
  try {
    for (let i = 0; i < 20; i++) {
      const pair = oneTimeKeyPair(`labwright-test-${i}`);
      const file = path.join(dir, `id_${i}`);
      writeFileSync(file, pair.privateKey, { mode: 0o600 });
      const derived = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim();
      expect(derived.split(' ').slice(0, 2)).toEqual(pair.publicKey.split(' ').slice(0, 2));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('pairs are fresh: no two of many share a key', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) seen.add(oneTimeKeyPair('x').publicKey);
  expect(seen.size).toBe(200);
});
