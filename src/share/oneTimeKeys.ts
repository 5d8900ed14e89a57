/**
 * One-time ed25519 key pairs in OpenSSH formats, made with `node:crypto`.
 *
 * ssh2 1.17's `utils.generateKeyPairSync('ed25519')` strips leading zero bytes of the
 * public key, so about one key in 256 cannot be parsed back (ssh2 issues #1513, #1390) and
 * a share would fail at random. The formats are small enough to write here:
 * - public: `ssh-ed25519 <base64(string "ssh-ed25519" || string pub)> comment` (RFC 8709);
 * - private: OpenSSH's `openssh-key-v1` container (PROTOCOL.key in OpenSSH's sources),
 *   unencrypted, with the 32-byte seed followed by the public key as the private part.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';

/** A key pair in OpenSSH formats. */
export interface KeyPair {
  /** `-----BEGIN OPENSSH PRIVATE KEY-----` text: a secret. */
  privateKey: string;
  /** `ssh-ed25519 AAAA… comment` line. */
  publicKey: string;
}

const KEY_TYPE = 'ssh-ed25519';
/** Raw key bytes sit at the end of node's DER encodings (SPKI and PKCS#8) for ed25519. */
const RAW_KEY_LENGTH = 32;

/** An SSH wire-format `string`: uint32 length, then the bytes. */
function sshString(data: Buffer | string): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

function uint32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value);
  return out;
}

/** Makes a fresh ed25519 key pair that always parses (OpenSSH, ssh2). */
export function oneTimeKeyPair(comment: string): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const publicRaw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-RAW_KEY_LENGTH);
  const seed = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-RAW_KEY_LENGTH);
  const publicBlob = Buffer.concat([sshString(KEY_TYPE), sshString(publicRaw)]);

  // The two check integers must be equal: a decrypting reader compares them.
  const check = randomBytes(4).readUInt32BE();
  const body = Buffer.concat([
    uint32(check),
    uint32(check),
    sshString(KEY_TYPE),
    sshString(publicRaw),
    sshString(Buffer.concat([seed, publicRaw])),
    sshString(comment),
  ]);
  // Padded with 1, 2, 3, ... to the cipher block size (8 for "none").
  const padding = Buffer.from(Array.from({ length: (8 - (body.length % 8)) % 8 }, (_, i) => i + 1));
  const container = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    uint32(1),
    sshString(publicBlob),
    sshString(Buffer.concat([body, padding])),
  ]);
  const lines = container.toString('base64').match(/.{1,70}/g) ?? [];
  return {
    privateKey: ['-----BEGIN OPENSSH PRIVATE KEY-----', ...lines, '-----END OPENSSH PRIVATE KEY-----', ''].join('\n'),
    publicKey: `${KEY_TYPE} ${publicBlob.toString('base64')} ${comment}`,
  };
}
