/**
 * Global setup of the example suite: starts the containerized devices (an SSH board, a
 * telnet-only board, a bastion, a board reachable only through it and an embedded board
 * with Dropbear and BusyBox), pins their host
 * keys in a known_hosts file, and exports where they are as environment variables, the
 * way a CI job would describe a real lab to lab.config.ts. Returns the teardown.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { startLab } from '../../fixtures/lab/startLab.js';

export default async function globalSetup(): Promise<() => Promise<void>> {
  const lab = await startLab({ roles: ['target', 'telnetOnly', 'bastion', 'inner', 'board'] });
  const dir = path.resolve('test-results', 'example-lab');
  mkdirSync(dir, { recursive: true });
  const knownHosts = path.join(dir, 'known_hosts');
  writeFileSync(
    knownHosts,
    `${Object.values(lab.hosts)
      .flatMap((host) => host?.knownHostsLines ?? [])
      .join('\n')}\n`,
  );

  const target = lab.host('target').endpoints.runner!;
  const telnet = lab.host('telnetOnly').endpoints.runner!;
  const bastion = lab.host('bastion').endpoints.runner!;
  const inner = lab.host('inner').endpoints.bastion!;
  const embedded = lab.host('board').endpoints.runner!;
  Object.assign(process.env, {
    LAB_KNOWN_HOSTS: knownHosts,
    LAB_USER: lab.credentials.user.username,
    LAB_PASSWORD: lab.credentials.user.password,
    LAB_KEY: lab.credentials.keys.ed25519.privateKeyPath,
    LAB_SSH_BOARD: `${target.host}:${target.ssh}`,
    LAB_TELNET_BOARD: `${telnet.host}:${telnet.telnet}`,
    LAB_TELNET_BOARD_FTP: String(telnet.ftp),
    LAB_BASTION: `${bastion.host}:${bastion.ssh}`,
    LAB_HIDDEN_BOARD: `${inner.host}:${inner.ssh}`,
    LAB_HIDDEN_BOARD_FTP: String(inner.ftp),
    LAB_EMBEDDED_BOARD: `${embedded.host}:${embedded.ssh}`,
  });
  return () => lab.stop();
}
