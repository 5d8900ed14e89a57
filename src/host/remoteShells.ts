/** Which transport carries the shells of a remote host: an SSH pty, or a telnet login. */
import type { RemoteHostConfig } from '../config/defineLab.js';
import { SshShellTransport } from '../session/sshShell.js';
import { TelnetShellTransport } from '../session/telnetShell.js';
import type { ShellTransport } from '../session/transport.js';
import type { ConnectionManager } from '../transport/connectionManager.js';
import type { NetworkPath } from '../transport/network.js';

/** A logged-in telnet shell on the host, through its network path. */
export function telnetShellTransport(config: RemoteHostConfig, path: NetworkPath): TelnetShellTransport {
  return new TelnetShellTransport({
    host: config.name,
    address: config.address,
    path,
    telnet: config.telnet,
    user: config.user,
    password: config.users[config.user]?.password,
  });
}

/** The transport for a shell session called `sessionName` on the host, by its `term`. */
export function remoteShellTransport(config: RemoteHostConfig, connections: ConnectionManager, path: NetworkPath, sessionName: string): ShellTransport {
  if (config.term === 'telnet') return telnetShellTransport(config, path);
  const { ssh, shell } = config;
  return new SshShellTransport({
    host: config.name,
    session: sessionName,
    connections,
    termType: ssh.termType,
    cols: ssh.cols,
    rows: ssh.rows,
    env: ssh.env,
    command: shell.command,
    openTimeout: shell.openTimeout,
  });
}
