/**
 * Port forwarding over a host's SSH connection. Local: a runner port reaching
 * `host:port` as seen from the remote. Remote: a port on the remote (loopback by
 * default) reaching `host:port` as seen from the runner. Both survive reconnects: local
 * forwards open each channel on the current connection; remote forwards are requested
 * again on the new connection.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';

import type { Client as SshClient, TcpConnectionDetails } from 'ssh2';

import { ConnectionError, messageOf } from '../util/errors.js';
import type { ConnectionManager, SshConnection } from './connectionManager.js';
import { LocalForwarder } from './localForwarder.js';

/** Opens a direct-tcpip channel from the remote to `address:port`. */
export function forwardOut(client: SshClient, address: string, port: number, source = { address: '127.0.0.1', port: 0 }): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    try {
      client.forwardOut(source.address, source.port, address, port, (error, stream) => (error ? reject(error) : resolve(stream)));
    } catch (error) {
      reject(new Error(`the connection is not usable: ${messageOf(error)}`));
    }
  });
}

/** An open forward; `close()` stops it. */
export interface Forward {
  /** Local port (local forward) or remote port (remote forward). */
  readonly port: number;
  close(): Promise<void>;
}

/** Starts a local forward: connections to 127.0.0.1:<port> reach `address:port` from the remote host. */
export async function startLocalForward(connections: ConnectionManager, host: string, address: string, port: number, localPort = 0): Promise<Forward> {
  const forwarder = new LocalForwarder(async (source) => {
    const connection = await connections.ssh();
    try {
      return await forwardOut(connection.client, address, port, source);
    } catch (error) {
      throw new ConnectionError('refused', `the remote side could not open ${address}:${port}: ${messageOf(error)}.`, {
        host,
        protocol: 'forward',
        hint: 'Check that the service listens there as seen from the device, and AllowTcpForwarding in its sshd_config.',
      });
    }
  }, localPort);
  const bound = await forwarder.listen();
  return { port: bound, close: () => forwarder.close() };
}

/** Asks the server to listen on `bindAddress:port`; resolves with the port it bound. */
function requestRemote(client: SshClient, bindAddress: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    try {
      client.forwardIn(bindAddress, port, (error, bound) => (error ? reject(error) : resolve(bound || port)));
    } catch (error) {
      reject(new Error(`the connection is not usable: ${messageOf(error)}`));
    }
  });
}

/** Handles incoming forwarded connections for one remote listener. */
export type IncomingHandler = (stream: Duplex, details: TcpConnectionDetails) => void;

type IncomingRoute = (details: TcpConnectionDetails, accept: () => Duplex, reject: () => void) => void;

/** Remote forwards of each connection by remote port (several can share one connection). */
const routesByClient = new WeakMap<SshClient, Map<number, IncomingRoute>>();

/**
 * Routes a connection's incoming forwarded channels by port through one listener. One
 * listener per forward would not do: every listener sees every channel, and a channel
 * accepted by one forward and rejected by another makes sshd drop the whole connection
 * ("open failure for non-opening channel"). Channels for no known port are rejected.
 */
function routesOf(client: SshClient): Map<number, IncomingRoute> {
  let routes = routesByClient.get(client);
  if (!routes) {
    const table = new Map<number, IncomingRoute>();
    routes = table;
    routesByClient.set(client, table);
    client.on('tcp connection', (details, accept, reject) => {
      const route = table.get(details.destPort);
      if (route) route(details, accept, reject);
      else reject();
    });
  }
  return routes;
}

/** Removes a forward's route, unless the port was taken over by another forward since. */
function unroute(client: SshClient, port: number, route: IncomingRoute): void {
  const routes = routesByClient.get(client);
  if (routes?.get(port) === route) routes.delete(port);
}

/**
 * Starts a remote forward: the server listens on `bindAddress:remotePort` (loopback by
 * default; 0 picks a free port) and each connection is handed to `handler`. Cancelled
 * with the same address and port it was requested with.
 */
export async function startRemoteForward(
  connections: ConnectionManager,
  host: string,
  options: { bindAddress?: string; remotePort?: number; handler: IncomingHandler },
): Promise<Forward & { readonly bindAddress: string }> {
  const bindAddress = options.bindAddress ?? '127.0.0.1';
  let connection: SshConnection = await connections.ssh();
  let port: number;
  try {
    port = await requestRemote(connection.client, bindAddress, options.remotePort ?? 0);
  } catch (error) {
    throw new ConnectionError('refused', `the server refused to listen on ${bindAddress}:${options.remotePort ?? 0}: ${messageOf(error)}.`, {
      host,
      protocol: 'forward',
      hint: "Check AllowTcpForwarding (remote) in the device's sshd_config, and that the port is free.",
    });
  }
  let closed = false;
  const onConnection: IncomingRoute = (details, accept, reject) => {
    if (closed) return reject();
    const stream = accept();
    try {
      options.handler(stream, details);
    } catch {
      // A failing handler is a fault of whoever serves the port (the share server, say),
      // not of the SSH connection: thrown into ssh2's event it would tear the connection
      // down and every command on it would be retried as if the device had dropped it.
      stream.destroy();
    }
  };
  const attach = (current: SshConnection) => {
    routesOf(current.client).set(port, onConnection);
    current.onLost(() => {
      unroute(current.client, port, onConnection);
      if (closed) return;
      // Ask again on the next connection, for the same port.
      void connections.ssh().then(
        async (next) => {
          if (closed || next === current) return;
          connection = next;
          await requestRemote(next.client, bindAddress, port).then(
            () => attach(next),
            () => {},
          );
        },
        () => {},
      );
    });
  };
  attach(connection);
  return {
    port,
    bindAddress,
    close: async () => {
      if (closed) return;
      closed = true;
      unroute(connection.client, port, onConnection);
      if (!connection.alive) return;
      await new Promise<void>((resolve) => {
        try {
          connection.client.unforwardIn(bindAddress, port, () => resolve());
        } catch {
          resolve();
        }
        setTimeout(resolve, 3_000);
      });
    },
  };
}

/** Remote forward to a runner-side TCP service: each incoming connection is piped to `localHost:localPort`. */
export function pipeToLocal(localHost: string, localPort: number): IncomingHandler {
  return (stream) => {
    const socket = net.connect({ host: localHost, port: localPort });
    socket.setNoDelay(true);
    socket.on('error', () => stream.destroy());
    stream.on('error', () => socket.destroy());
    socket.pipe(stream).pipe(socket);
  };
}
