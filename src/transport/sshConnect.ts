/**
 * Opening one authenticated SSH connection over a NetworkPath: host key verified by policy,
 * authentication by plan, keepalives, a bound on the whole handshake, errors classified.
 */
import type { Client as SshClient } from 'ssh2';
import ssh2 from 'ssh2';

import type { RemoteHostConfig } from '../config/defineLab.js';
import { ConnectionError, LabwrightError, messageOf } from '../util/errors.js';
import { formatDuration } from '../util/time.js';
import { verifyHostKey } from './hostKeys.js';
import { adviceFor, classifySocketError, type NetworkPath } from './network.js';
import { authFailure, buildAuthHandler } from './sshAuth.js';

const { Client } = ssh2;

/** Everything needed to open an SSH connection to one host as one user. */
export interface SshTarget {
  config: RemoteHostConfig;
  /** User to log in as (one of config.users). */
  user: string;
}

/**
 * Opens an authenticated connection. The TCP stream comes from `path` (direct or through
 * hops). Rejects with a ConnectionError whose kind says whether retrying can help.
 */
export async function connectSsh(target: SshTarget, path: NetworkPath): Promise<SshClient> {
  const { config, user } = target;
  const options = config.ssh;
  const credentials = config.users[user];
  const context = { host: config.name, protocol: 'ssh' as const };
  if (!credentials) {
    throw new LabwrightError(`no credentials for user "${user}".`, { ...context, hint: `Add users.${user} to the host in the lab config.` });
  }
  const endpoint = `${config.address}:${options.port}${path.description === 'direct' ? '' : ` (${path.description})`}`;
  const started = Date.now();
  const auth = await buildAuthHandler({
    host: config.name,
    username: user,
    credentials,
    methods: options.authMethods,
    keyboardInteractive: options.keyboardInteractive,
  });
  const sock = await path.connect(config.address, options.port, options.connectTimeout, context);
  const remaining = Math.max(1_000, options.connectTimeout - (Date.now() - started));

  return new Promise<SshClient>((resolve, reject) => {
    const client = new Client();
    let hostKeyFailure: unknown;
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.removeAllListeners('ready');
      client.on('error', () => {}); // late errors of a connection being discarded
      client.end();
      sock.destroy();
      reject(error);
    };
    // ssh2's readyTimeout only covers the handshake; this bounds everything, auth included.
    const timer = setTimeout(
      () =>
        fail(
          new ConnectionError('timeout', `no SSH login at ${endpoint} within ${formatDuration(options.connectTimeout)} (handshake or authentication hung).`, {
            ...context,
            hint: adviceFor('timeout'),
          }),
        ),
      remaining,
    );
    client.once('ready', () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(client);
    });
    client.on('error', (error: Error & { level?: string; code?: string }) => {
      if (hostKeyFailure) return fail(hostKeyFailure instanceof Error ? hostKeyFailure : new Error(String(hostKeyFailure)));
      if (error.level === 'client-authentication') return fail(authFailure(config.name, user, endpoint, auth.attempts, auth.serverMethods()));
      if (error.level === 'client-timeout') {
        return fail(
          new ConnectionError('timeout', `the SSH handshake with ${endpoint} did not finish in time.`, {
            ...context,
            hint: adviceFor('timeout'),
            cause: error,
          }),
        );
      }
      if (error.level === 'client-socket') {
        const kind = classifySocketError(error.code);
        return fail(
          new ConnectionError(kind, `the connection to ${endpoint} failed during the SSH handshake: ${messageOf(error)}.`, {
            ...context,
            hint: adviceFor(kind),
            cause: error,
          }),
        );
      }
      if (/before handshake/i.test(error.message)) {
        return fail(
          new ConnectionError('closed', `the connection to ${endpoint} closed before the SSH handshake: nothing there speaks SSH.`, {
            ...context,
            hint: 'Check the address and port (a firewall or proxy may have accepted the connection), and that sshd runs on the device.',
            cause: error,
          }),
        );
      }
      fail(
        new ConnectionError('protocol', `SSH handshake with ${endpoint} failed: ${messageOf(error)}.`, {
          ...context,
          hint: 'Check that an SSH server listens on this port, and ssh.algorithms.',
          cause: error,
        }),
      );
    });
    client.once('close', () => {
      fail(
        new ConnectionError('closed', `the server at ${endpoint} closed the connection during login.`, {
          ...context,
          hint: 'The device may limit connections (MaxStartups) or be rebooting; check its sshd log.',
        }),
      );
    });
    try {
      client.connect({
        sock,
        username: user,
        readyTimeout: remaining,
        keepaliveInterval: options.keepaliveInterval,
        keepaliveCountMax: options.keepaliveCountMax,
        authHandler: auth.handler,
        ...(options.algorithms ? { algorithms: options.algorithms as never } : {}),
        hostVerifier: (key: Buffer, verify: (valid: boolean) => void) => {
          verifyHostKey(
            {
              host: config.name,
              address: config.address,
              port: options.port,
              policy: options.hostKeyPolicy,
              knownHosts: options.knownHosts,
              pinFile: options.pinFile,
            },
            key,
          ).then(
            () => verify(true),
            (error: unknown) => {
              hostKeyFailure = error;
              verify(false);
            },
          );
        },
      });
    } catch (error) {
      fail(new ConnectionError('protocol', `cannot start SSH to ${endpoint}: ${messageOf(error)}.`, { ...context, cause: error }));
    }
  });
}
