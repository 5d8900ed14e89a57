/**
 * How TCP reaches a host: directly from the runner, or through a chain of SSH hops. Every
 * protocol gets its sockets here, so hops work the same way for SSH, telnet, FTP and nc.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';

import { type ConnectFailure, ConnectionError, type ErrorProtocol } from '../util/errors.js';
import { formatDuration } from '../util/time.js';

/** A real TCP endpoint on the runner's loopback reaching some host:port; release it when done. */
export interface LocalEndpoint {
  host: string;
  port: number;
  /** Stops forwarding (no-op for direct endpoints). New connections are refused afterwards. */
  release(): Promise<void>;
}

/** Who is asking, for error messages. */
export interface ConnectContext {
  /** Lab host the connection is for. */
  host: string;
  protocol: ErrorProtocol;
}

/** How a stream from {@link NetworkPath.connect} behaves. */
export interface StreamOptions {
  /**
   * The peer ending its side does not end ours: we may keep sending (a BusyBox `nc -l`
   * ends its sending side as soon as its stdin ends, before the upload it receives has
   * begun). The caller then ends its side itself. Streams through hops (SSH channels)
   * always behave so. Default false: the stream ends when the peer's side does.
   */
  halfOpen?: boolean;
}

/** A way to reach TCP services of a host. */
export interface NetworkPath {
  /** `direct`, or the hop chain (`via bastion → mid`), for messages. */
  readonly description: string;
  /** Opens a TCP stream to `address:port` as seen from the end of the path. */
  connect(address: string, port: number, timeoutMs: number, context: ConnectContext, options?: StreamOptions): Promise<Duplex>;
  /**
   * A local 127.0.0.1 endpoint reaching `address:port`, for libraries that need a real
   * `net.Socket` (basic-ftp data connections). Direct paths return the address itself.
   */
  endpoint(address: string, port: number, context: ConnectContext): Promise<LocalEndpoint>;
}

/** Maps a socket error code to a failure kind. */
export function classifySocketError(code: string | undefined): ConnectFailure {
  switch (code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
      return 'dns';
    case 'ECONNREFUSED':
      return 'refused';
    case 'ETIMEDOUT':
      return 'timeout';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
      return 'unreachable';
    case 'ECONNRESET':
    case 'EPIPE':
      return 'reset';
    default:
      return 'closed';
  }
}

const ADVICE: Record<ConnectFailure, string> = {
  dns: 'Check the address in the lab config and the DNS of the runner (or of the hop).',
  refused: 'Nothing listens there: check the port and that the service runs on the device.',
  timeout: 'Check that the device is powered and reachable (network, firewall, hop), or raise connectTimeout.',
  unreachable: 'Check the network route from the runner (or the hop) to the device.',
  reset: 'The device dropped the connection; it may be rebooting or limiting connections.',
  auth: 'Check the credentials in the lab config.',
  'host-key': 'See the host key section of the README.',
  protocol: 'The service did not speak the expected protocol: check the port.',
  closed: 'Check that the device is up and the service runs.',
};

/** What to do about a failure kind. */
export function adviceFor(kind: ConnectFailure): string {
  return ADVICE[kind];
}

/** Opens a TCP connection from the runner with a bound, no-delay on, errors classified. */
export function connectTcp(
  address: string,
  port: number,
  timeoutMs: number,
  context: ConnectContext,
  via = '',
  options: StreamOptions = {},
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address, port, allowHalfOpen: options.halfOpen ?? false });
    socket.setNoDelay(true);
    const fail = (kind: ConnectFailure, detail: string, cause?: unknown) => {
      socket.destroy();
      reject(new ConnectionError(kind, `cannot connect to ${address}:${port}${via}: ${detail}.`, { ...context, hint: adviceFor(kind), cause }));
    };
    const timer = setTimeout(() => fail('timeout', `no answer within ${formatDuration(timeoutMs)}`), timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const kind = classifySocketError(error.code);
      const what =
        kind === 'dns' ? `the name ${address} does not resolve (${error.code})` : kind === 'refused' ? 'connection refused' : `${error.code ?? error.message}`;
      fail(kind, what, error);
    });
  });
}

/** The runner reaches the host itself. */
export const directPath: NetworkPath = {
  description: 'direct',
  connect: (address, port, timeoutMs, context, options) => connectTcp(address, port, timeoutMs, context, '', options),
  endpoint: async (address, port) => ({ host: address, port, release: async () => {} }),
};
