/**
 * Fetching a server's host key without logging in (what `ssh-keyscan` does), through the
 * host's network path so hosts behind hops can be scanned too: an SSH handshake whose host
 * key verifier records the key and refuses it, so no authentication is ever attempted.
 * The key type is the one a real connection negotiates with the same algorithm lists.
 */
import ssh2 from 'ssh2';

import { ConnectionError, type ErrorProtocol, messageOf } from '../util/errors.js';
import { formatDuration } from '../util/time.js';
import type { NetworkPath } from './network.js';

const { Client } = ssh2;

/** Where to scan and how long to wait. */
export interface HostKeyScanTarget {
  /** Lab host name, for messages. */
  host: string;
  address: string;
  port: number;
  timeoutMs: number;
  /** ssh2 algorithm lists, as the host's connections use them. */
  algorithms?: Record<string, string[]> | undefined;
}

/** The host key blob the server presents (SSH wire format, as known_hosts stores it in base64). */
export async function scanHostKey(target: HostKeyScanTarget, path: NetworkPath): Promise<Buffer> {
  const context = { host: target.host, protocol: 'ssh' as ErrorProtocol };
  const sock = await path.connect(target.address, target.port, target.timeoutMs, context);
  return new Promise<Buffer>((resolve, reject) => {
    const client = new Client();
    let key: Buffer | undefined;
    const finish = (error?: Error) => {
      clearTimeout(timer);
      client.removeAllListeners();
      client.on('error', () => {});
      client.end();
      sock.destroy();
      if (key) resolve(key);
      else reject(error);
    };
    const timer = setTimeout(
      () =>
        finish(
          new ConnectionError('timeout', `no SSH host key from ${target.address}:${target.port} within ${formatDuration(target.timeoutMs)}.`, {
            ...context,
            hint: 'Check that an SSH server answers on this port.',
          }),
        ),
      target.timeoutMs,
    );
    client.on('error', (error: Error) =>
      finish(
        new ConnectionError('protocol', `no SSH host key from ${target.address}:${target.port}: ${messageOf(error)}.`, {
          ...context,
          hint: 'Check that an SSH server listens on this port.',
          cause: error,
        }),
      ),
    );
    client.on('close', () =>
      finish(
        new ConnectionError('closed', `${target.address}:${target.port} closed the connection before showing a host key.`, {
          ...context,
          hint: 'Check that an SSH server listens on this port.',
        }),
      ),
    );
    client.connect({
      sock,
      username: 'labwright-keyscan',
      readyTimeout: target.timeoutMs,
      ...(target.algorithms ? { algorithms: target.algorithms as never } : {}),
      hostVerifier: (presented: Buffer) => {
        key = Buffer.from(presented);
        // Refusing ends the handshake here, before any authentication.
        queueMicrotask(() => finish());
        return false;
      },
    });
  });
}
