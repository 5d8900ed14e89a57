/**
 * A TCP listener on the runner's loopback whose connections are carried to some
 * destination by a stream opener (an SSH direct-tcpip channel, usually). Used for local
 * port forwards and for giving socket-only libraries (FTP data, telnet-client) real sockets
 * through hops.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';

import { messageOf } from '../util/errors.js';
import { sleep } from '../util/time.js';

/** How long one side of a finished forwarded connection may take to flush before it is destroyed. */
const LINGER_MS = 30_000;

/** Ends `side` gracefully and destroys it if it has not closed within LINGER_MS. */
function linger(side: Duplex): void {
  if (side.destroyed) return;
  side.end();
  const timer = setTimeout(() => side.destroy(), LINGER_MS);
  timer.unref();
  side.once('close', () => clearTimeout(timer));
}

/** Opens the remote end for one accepted local connection. */
export type StreamOpener = (source: { address: string; port: number }) => Promise<Duplex>;

export class LocalForwarder {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly streams = new Set<Duplex>();
  /** Why the last forwarded connection could not be opened, for diagnostics. */
  lastError: string | undefined;

  constructor(
    private readonly open: StreamOpener,
    private readonly bindPort = 0,
    private readonly bindAddress = '127.0.0.1',
  ) {}

  /** Starts listening; resolves with the bound port. */
  async listen(): Promise<number> {
    // Half-open: a client that ends its side (an upload done, a request sent) still gets
    // everything the far end sends afterwards; each direction ends on its own.
    const server = net.createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.bindPort, this.bindAddress, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return (server.address() as net.AddressInfo).port;
  }

  /** The bound port (after listen). */
  get port(): number {
    return (this.server?.address() as net.AddressInfo | null)?.port ?? 0;
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    socket.pause();
    this.open({ address: socket.remoteAddress ?? '127.0.0.1', port: socket.remotePort ?? 0 }).then(
      (stream) => {
        this.streams.add(stream);
        stream.on('close', () => this.streams.delete(stream));
        // Errors end both sides at once; a normal end is passed on as a half-close (pipe
        // ends the other side after flushing) so that nothing still queued for the SSH
        // window or the local socket is thrown away, then the other side gets a bounded
        // time to finish.
        stream.on('error', () => socket.destroy());
        socket.on('error', () => stream.destroy());
        socket.on('close', () => linger(stream));
        stream.on('close', () => linger(socket));
        socket.pipe(stream);
        stream.pipe(socket);
        socket.resume();
      },
      (error: unknown) => {
        this.lastError = messageOf(error);
        socket.destroy();
      },
    );
  }

  /** Stops listening and ends every forwarded connection (bounded). */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    for (const stream of this.streams) stream.destroy();
    if (server) await Promise.race([new Promise<void>((resolve) => server.close(() => resolve())), sleep(2_000)]);
  }
}
