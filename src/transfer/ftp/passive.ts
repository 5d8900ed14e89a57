/**
 * Passive-mode data connections for basic-ftp that go through a {@link NetworkPath}.
 *
 * basic-ftp opens every data connection in `client.prepareTransfer(ftp)`: it sends EPSV or
 * PASV and connects to the address the server announced. Behind SSH hops that address is the
 * device's internal one and the port is only reachable through a forward, so this module
 * replaces `prepareTransfer`: the announced port is asked of `path.endpoint(<configured
 * address>, port)` and the data socket connects to the endpoint it returns. The announced
 * address is never used (it is what NAT and hops get wrong, and ignoring it also rules out
 * the FTP bounce that basic-ftp guards against by default).
 */
import net from 'node:net';
import tls from 'node:tls';

import type { Client, FTPContext, FTPResponse } from 'basic-ftp';
import { FTPError } from 'basic-ftp';

import type { ConnectContext, LocalEndpoint, NetworkPath } from '../../transport/network.js';
import { classifySocketError } from '../../transport/network.js';
import { ConnectionError, messageOf } from '../../util/errors.js';
import { formatDuration, withTimeout } from '../../util/time.js';

/** Passive commands, in the order they are tried. */
export type PassiveCommand = 'EPSV' | 'PASV';

/** Where data connections go. */
export interface PassiveTarget {
  /** The host's address as configured (the one `path.endpoint()` understands). */
  address: string;
  path: NetworkPath;
  context: ConnectContext;
  /** Bound on getting an endpoint and connecting to it. */
  connectTimeout: number;
  /** Commands to try; default EPSV, then PASV. Tests narrow it to exercise one. */
  commands?: readonly PassiveCommand[];
}

/** Port announced in a `229 Entering Extended Passive Mode (|||port|)` reply. */
export function parseEpsvPort(message: string): number | undefined {
  // Same grammar as basic-ftp's parseEpsvResponse (transfer.js): delimiter `|` or `!`.
  const match = /[|!]{3}(\d+)[|!]/.exec(message);
  return match?.[1] === undefined ? undefined : validPort(Number(match[1]));
}

/** Port announced in a `227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)` reply; the host part is ignored. */
export function parsePasvPort(message: string): number | undefined {
  const match = /(?<![-\d])\d+,\d+,\d+,\d+,(\d+),(\d+)/.exec(message);
  if (match?.[1] === undefined || match[2] === undefined) return undefined;
  return validPort((Number(match[1]) & 255) * 256 + (Number(match[2]) & 255));
}

function validPort(port: number): number | undefined {
  return Number.isInteger(port) && port >= 1 && port <= 65535 ? port : undefined;
}

/**
 * Replaces one basic-ftp client's `prepareTransfer`. One instance per client: it remembers
 * which passive command the server accepted and holds the endpoints of the transfer in
 * progress until {@link PassiveDataConnector.release} is called after the transfer.
 */
export class PassiveDataConnector {
  private command: PassiveCommand | undefined;
  private endpoints: LocalEndpoint[] = [];
  private readonly commands: readonly PassiveCommand[];

  constructor(private readonly target: PassiveTarget) {
    this.commands = target.commands ?? ['EPSV', 'PASV'];
  }

  /** Makes `client` open its data connections through this connector. */
  install(client: Client): void {
    client.prepareTransfer = (ftp) => this.prepare(ftp);
  }

  /** Releases the endpoints of the transfer that just ended (call after every operation). */
  async release(): Promise<void> {
    const endpoints = this.endpoints;
    this.endpoints = [];
    // Bounded: a hop that hangs on release must not hang the pool.
    await Promise.allSettled(endpoints.map((endpoint) => withTimeout(endpoint.release(), 5_000, () => new Error('endpoint release timed out'))));
  }

  /** basic-ftp's TransferStrategy: send EPSV/PASV, connect the data socket, set `ftp.dataSocket`. */
  private async prepare(ftp: FTPContext): Promise<FTPResponse> {
    const candidates = this.command ? [this.command] : this.commands;
    const refusals: string[] = [];
    for (const command of candidates) {
      let reply: FTPResponse;
      try {
        reply = await ftp.request(command);
      } catch (error) {
        // A refused command (5xx) leaves the session usable: try the next one. Anything else
        // (timeout, closed control connection) has closed the client already.
        if (error instanceof FTPError) {
          refusals.push(`${command}: ${error.message}`);
          continue;
        }
        throw error;
      }
      const port = command === 'EPSV' ? parseEpsvPort(reply.message) : parsePasvPort(reply.message);
      if (port === undefined) {
        refusals.push(`${command}: unparsable reply "${reply.message}"`);
        continue;
      }
      this.command = command;
      // A new data connection replaces the previous one (basic-ftp's dataSocket setter
      // closes it), so the previous endpoint is no longer in use.
      await this.release();
      await this.connect(ftp, port);
      return reply;
    }
    throw new ConnectionError('protocol', `the server refused passive mode (${refusals.join('; ')}).`, {
      ...this.target.context,
      hint: 'labwright uses passive FTP only (EPSV or PASV); enable passive mode on the device (vsftpd: pasv_enable=YES).',
    });
  }

  private async connect(ftp: FTPContext, port: number): Promise<void> {
    const { address, path, context, connectTimeout } = this.target;
    const endpoint = await withTimeout(
      path.endpoint(address, port, context),
      connectTimeout,
      () =>
        new ConnectionError(
          'timeout',
          `no forward to the FTP data port ${address}:${port} ${path.description} within ${formatDuration(connectTimeout)}.`,
          context,
        ),
    );
    this.endpoints.push(endpoint);
    await openDataSocket(ftp, endpoint, { address, port }, connectTimeout, context);
  }
}

/**
 * Connects a real `net.Socket` to `endpoint`, wraps it in TLS resuming the control
 * connection's session when the control connection is TLS, and hands it to basic-ftp as
 * `ftp.dataSocket`. Mirrors basic-ftp 6.2's `connectForPassiveTransfer` (dist/transfer.js,
 * lines 112-164) except for the target.
 */
function openDataSocket(
  ftp: FTPContext,
  endpoint: LocalEndpoint,
  target: { address: string; port: number },
  timeoutMs: number,
  context: ConnectContext,
): Promise<void> {
  const where = `${target.address}:${target.port}`;
  const direct = endpoint.host === target.address && endpoint.port === target.port;
  const via = direct ? '' : ` (through ${endpoint.host}:${endpoint.port})`;
  return new Promise((resolve, reject) => {
    const raw = new net.Socket();
    const fail = (error: ConnectionError) => {
      raw.destroy();
      reject(error);
    };
    const onError = (error: NodeJS.ErrnoException) => {
      const kind = classifySocketError(error.code);
      fail(
        new ConnectionError(kind, `cannot open the FTP data connection to ${where}${via}: ${error.code ?? messageOf(error)}.`, {
          ...context,
          hint: 'Check that the passive port range of the device is reachable (firewall, hop forwarding).',
          cause: error,
        }),
      );
    };
    const onTimeout = () =>
      fail(
        new ConnectionError('timeout', `the FTP data connection to ${where}${via} was not accepted within ${formatDuration(timeoutMs)}.`, {
          ...context,
          hint: 'Check that the passive port range of the device is reachable (firewall, hop forwarding).',
        }),
      );
    raw.setTimeout(timeoutMs);
    raw.once('error', onError);
    raw.once('timeout', onTimeout);
    raw.connect({ host: endpoint.host, port: endpoint.port }, () => {
      raw.setTimeout(0);
      raw.removeListener('error', onError);
      raw.removeListener('timeout', onTimeout);
      const control = ftp.socket;
      if (!(control instanceof tls.TLSSocket)) {
        // Assigned here, not after the promise settles, so that basic-ftp's error handlers
        // (attached by the dataSocket setter) are in place before any socket event.
        ftp.dataSocket = raw;
        resolve();
        return;
      }
      // Servers such as vsftpd (require_ssl_reuse=YES) accept a data connection only if it
      // resumes the control connection's TLS session: pass the latest session, keep the
      // newest ticket for the next one. The upload path of basic-ftp waits for
      // 'secureConnect' itself (transfer.js uploadFrom), downloads just read.
      const secure = tls.connect({ ...ftp.tlsOptions, socket: raw, session: ftp.tlsSessionStore ?? control.getSession() });
      secure.on('session', (session: Buffer) => {
        ftp.tlsSessionStore = session;
      });
      ftp.dataSocket = secure;
      resolve();
    });
  });
}
