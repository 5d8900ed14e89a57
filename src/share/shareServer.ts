/**
 * The in-process SSH server behind a reverse SFTP share. It never listens on a socket:
 * each forwarded channel the device's sshd hands us is injected into ssh2's `Server` with
 * `injectSocket()` (ssh2 1.17 lib/server.js: it emits the private net.Server's
 * `connection` event, whose handler builds the server-side `Client` over any Duplex), so
 * the SSH handshake runs inside the forwarded channel. Offered: public-key auth with the
 * one key of this share, then the `sftp` subsystem; shells, exec, forwarding, password and
 * keyboard-interactive are refused (ssh2 rejects every request we register no handler for).
 */
import { timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

import type { AuthContext, Connection, ParsedKey } from 'ssh2';
import ssh2 from 'ssh2';

import { serveSftp, type SftpSession } from './sftpServer.js';
import type { ShareRoot } from './shareRoot.js';

/** Options of a {@link ShareServer}. */
export interface ShareServerOptions {
  root: ShareRoot;
  readOnly: boolean;
  /** Private host key the clients see (OpenSSH format). */
  hostKey: string;
  /** The one public key allowed to log in (`ssh-ed25519 AAAA…`). */
  clientKey: string;
  /** Bound on a connection from its first byte to successful authentication; default 30 s. */
  authTimeout?: number;
  /** Told when a device connection fails inside the share itself (never a lost SSH connection). */
  onProblem?: (detail: string) => void;
}

/** Failed authentication attempts before the connection is dropped (OpenSSH's MaxAuthTries default). */
const MAX_AUTH_TRIES = 6;

function parseOne(key: string, what: string): ParsedKey {
  const parsed = ssh2.utils.parseKey(key);
  if (parsed instanceof Error) throw new Error(`the share's ${what} could not be parsed: ${parsed.message}`);
  return Array.isArray(parsed) ? (parsed[0] as ParsedKey) : parsed;
}

/** Serves SFTP connections arriving as streams; pausable; never listens on a port. */
export class ShareServer {
  private readonly allowed: ParsedKey;
  private readonly allowedBlob: Buffer;
  private readonly streams = new Set<Duplex>();
  private readonly clients = new Set<Connection>();
  private readonly sessions = new Set<SftpSession>();
  private paused = false;
  private stopped = false;

  constructor(private readonly options: ShareServerOptions) {
    // Both keys are checked now: a key that cannot be parsed must fail the share's start,
    // not each device connection later.
    parseOne(options.hostKey, 'host key');
    this.allowed = parseOne(options.clientKey, 'client key');
    this.allowedBlob = this.allowed.getPublicSSH();
  }

  /** Connections currently open (authenticated or not). */
  get connectionCount(): number {
    return this.streams.size;
  }

  /** Serves one incoming stream (a forwarded channel); refused at once while paused or stopped. */
  accept(stream: Duplex): void {
    stream.on('error', () => {});
    if (this.paused || this.stopped) {
      stream.destroy();
      return;
    }
    this.streams.add(stream);
    // Bound: a connection that has not authenticated in time is dropped.
    const authTimer = setTimeout(() => stream.destroy(), this.options.authTimeout ?? 30_000);
    authTimer.unref();
    stream.once('close', () => {
      clearTimeout(authTimer);
      this.streams.delete(stream);
    });
    // One ssh2 Server per stream (cheap: it never listens) so the connection handler knows
    // its stream and timer without reaching into ssh2's private fields.
    try {
      const server = new ssh2.Server({ hostKeys: [this.options.hostKey], ident: 'labwright-share' }, (client) => this.onClient(client, authTimer));
      server.on('error', () => {});
      server.injectSocket(stream as unknown as Socket);
    } catch (error) {
      stream.destroy();
      this.options.onProblem?.(`a device connection could not be served: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private onClient(client: Connection, authTimer: NodeJS.Timeout): void {
    this.clients.add(client);
    client.on('error', () => {});
    client.once('close', () => this.clients.delete(client));
    if (this.paused || this.stopped) {
      client.end();
      return;
    }
    let failures = 0;
    client.on('authentication', (ctx: AuthContext) => {
      if (this.authorised(ctx)) return ctx.accept();
      // A key query without signature: say yes only for the share's key.
      if (ctx.method === 'publickey' && !ctx.signature && this.sameKey(ctx)) return ctx.accept();
      if (ctx.method !== 'none' && ++failures >= MAX_AUTH_TRIES) {
        client.end();
        return;
      }
      ctx.reject(['publickey']);
    });
    client.once('ready', () => {
      clearTimeout(authTimer);
      client.on('session', (acceptSession) => {
        const session = acceptSession();
        session.on('sftp', (acceptSftp) => {
          if (this.paused || this.stopped) return void client.end();
          const stream = acceptSftp();
          const served = serveSftp(stream, this.options.root, { readOnly: this.options.readOnly });
          this.sessions.add(served);
          stream.once('close', () => this.sessions.delete(served));
        });
      });
    });
  }

  /** Whether the client proved it holds the share's key (signature over the session blob). */
  private authorised(ctx: AuthContext): boolean {
    if (ctx.method !== 'publickey' || !ctx.signature || !ctx.blob || !this.sameKey(ctx)) return false;
    return this.allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true;
  }

  private sameKey(ctx: AuthContext): boolean {
    if (ctx.method !== 'publickey') return false;
    const offered = ctx.key.data;
    return ctx.key.algo === this.allowed.type && offered.length === this.allowedBlob.length && timingSafeEqual(offered, this.allowedBlob);
  }

  /** Refuses new connections and closes the open ones. */
  pause(): void {
    this.paused = true;
    this.dropAll();
  }

  /** Accepts connections again after {@link pause}. */
  resume(): void {
    if (!this.stopped) this.paused = false;
  }

  /** Closes everything for good; open files are closed before it resolves. */
  async close(): Promise<void> {
    this.stopped = true;
    this.dropAll();
    const sessions = [...this.sessions];
    this.sessions.clear();
    await Promise.allSettled(sessions.map((session) => session.close()));
  }

  private dropAll(): void {
    for (const client of this.clients) {
      try {
        client.end();
      } catch {}
    }
    for (const stream of this.streams) stream.destroy();
    for (const session of this.sessions) void session.close();
    this.sessions.clear();
  }
}
