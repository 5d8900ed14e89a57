/**
 * An in-process SSH server (ssh2's `Server`) for fast unit tests of the connection layer:
 * accepts any password, refuses session channels beyond `maxSessions` (as sshd does), and
 * runs a few fake commands on exec channels. It counts what it saw so tests can assert on
 * connections and concurrent sessions.
 */
import type net from 'node:net';

import type { Connection, ServerChannel } from 'ssh2';
import ssh2 from 'ssh2';

import { defineLab } from '../../src/config/defineLab.js';
import type { HostInput } from '../../src/config/schema.js';
import { oneTimeKeyPair } from '../../src/share/oneTimeKeys.js';

export interface FakeSshOptions {
  /** Session channels allowed per connection; default 10. */
  maxSessions?: number;
  /** The software version the server announces (`dropbear_2022.83` makes labwright take exec channels one at a time). */
  ident?: string;
}

/**
 * Fake commands: `echo TEXT`, `exit N`, `sleep SECONDS` (then exit 0), `drop-first` (the
 * first time on this server: drop the whole connection; then exit 0). Anything else exits 127.
 */
export interface FakeSshServer {
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Most session channels open at once on one connection. */
  readonly peakSessions: number;
  /** Exec commands received, in order. */
  readonly commands: string[];
  /** Drops every open connection (a rebooting device). */
  dropAll(): void;
  close(): Promise<void>;
}

export async function startFakeSsh(options: FakeSshOptions = {}): Promise<FakeSshServer> {
  const maxSessions = options.maxSessions ?? 10;
  const clients = new Set<Connection>();
  const sockets = new Set<net.Socket>();
  const commands: string[] = [];
  let connections = 0;
  let peakSessions = 0;
  let dropped = false;

  const server = new ssh2.Server({ hostKeys: [oneTimeKeyPair('fake-host').privateKey], ...(options.ident ? { ident: options.ident } : {}) }, (client) => {
    connections++;
    clients.add(client);
    let sessions = 0;
    client.on('error', () => {});
    client.on('close', () => clients.delete(client));
    client.on('authentication', (ctx) => (ctx.method === 'password' ? ctx.accept() : ctx.reject(['password'])));
    client.on('ready', () => {
      client.on('session', (accept, reject) => {
        if (sessions >= maxSessions) return reject();
        sessions++;
        peakSessions = Math.max(peakSessions, sessions);
        const session = accept();
        session.once('close', () => {
          sessions--;
          closeBareSession(client, session);
        });
        session.on('exec', (acceptExec, _rejectExec, info) => {
          const channel = acceptExec();
          // labwright's exec scripts carry a tag comment line; the command is what remains.
          const command = info.command
            .split('\n')
            .filter((line) => !line.startsWith('#'))
            .join('\n');
          commands.push(command);
          run(command, channel, () => {
            if (!dropped) {
              dropped = true;
              client.end();
              return true;
            }
            return false;
          });
        });
      });
    });
  });
  server.on('connection', () => {});
  const listener = (server as unknown as { _srv: net.Server })._srv;
  listener.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    get connections() {
      return connections;
    },
    get peakSessions() {
      return peakSessions;
    },
    commands,
    dropAll() {
      for (const socket of sockets) socket.destroy();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * ssh2's Server never answers the client's close of a session that had no request (the
 * MaxSessions probe opens such channels), where sshd does: answer it the way ssh2 itself
 * closes channels (lib/server.js), so the client sees the close.
 */
function closeBareSession(client: Connection, session: unknown): void {
  const bare = session as { _channel?: unknown; _chanInfo: { outgoing: { id: number }; incoming: { id: number } } };
  if (bare._channel) return;
  const internals = client as unknown as { _protocol: { channelClose(id: number): void }; _chanMgr: { remove(id: number): void } };
  internals._protocol.channelClose(bare._chanInfo.outgoing.id);
  internals._chanMgr.remove(bare._chanInfo.incoming.id);
}

function run(command: string, channel: ServerChannel, dropFirst: () => boolean): void {
  const finish = (code: number) => {
    channel.exit(code);
    channel.end();
  };
  const [word, ...rest] = command.trim().split(/\s+/);
  switch (word) {
    case 'echo':
      channel.write(`${rest.join(' ')}\n`);
      return finish(0);
    case 'exit':
      return finish(Number(rest[0] ?? 0));
    case 'sleep':
      setTimeout(() => finish(0), Number(rest[0] ?? 0) * 1000);
      return;
    case 'drop-first':
      if (!dropFirst()) finish(0);
      return;
    default:
      channel.stderr.write(`${word}: not found\n`);
      return finish(127);
  }
}

/** A lab config whose host `fake` points at the fake server (password auth, no host key check). */
export function fakeLab(server: FakeSshServer, ssh: HostInput['ssh'] = {}) {
  return defineLab({
    hosts: {
      fake: {
        address: '127.0.0.1',
        users: { tester: { password: 'fake-password' } },
        ssh: { port: server.port, hostKeyPolicy: 'off', authMethods: ['password'], connectTimeout: 5_000, ...ssh },
      },
    },
  });
}
