/**
 * The containerized lab for tests: starts real OpenSSH / telnetd / vsftpd containers with
 * fixtures/lab/startLab.ts and describes them as a labwright lab config.
 *
 * Host names in the generated config:
 * - `target`  SSH target (also telnet and FTP), published on 127.0.0.1
 * - `telnet`  telnet-only target (no sshd), with FTP
 * - `bastion` SSH bastion, published on 127.0.0.1
 * - `inner`   reachable only through `bastion`
 * - `mid`     second bastion, reachable only through `bastion`
 * - `deep`    the inner target reached through `bastion` → `mid`
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test as base } from '@playwright/test';
import type { HostInput, LabInput } from '../../src/config/index.js';
import { startLab, type Lab as StartedLab, type LabHost, type LabRole, type StartLabOptions } from '../../fixtures/lab/startLab.js';

export type { StartedLab, LabHost, LabRole };

/** Writes every host key line of the lab into one known_hosts file and returns its path. */
export function knownHostsFile(lab: StartedLab): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-known-hosts-'));
  const file = path.join(dir, 'known_hosts');
  const lines = Object.values(lab.hosts).flatMap((host) => host?.knownHostsLines ?? []);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/** Lab config for the started roles; `overrides` are merged per host name. */
export function labInput(lab: StartedLab, overrides: Record<string, Partial<HostInput>> = {}): LabInput {
  const creds = lab.credentials;
  const knownHosts = knownHostsFile(lab);
  const users = {
    [creds.user.username]: { password: creds.user.password, privateKey: creds.keys.ed25519.privateKeyPath },
    [creds.user2.username]: { password: creds.user2.password },
    [creds.mfa.username]: { password: creds.mfa.password, totp: creds.mfa.totpSecret },
  };
  const hosts: Record<string, HostInput> = {};
  const entry = (host: LabHost, endpoint: { host: string; ssh?: number; telnet?: number; ftp?: number }, extra: Partial<HostInput>): HostInput => ({
    address: endpoint.host,
    users,
    user: creds.user.username,
    ssh: { ...(endpoint.ssh ? { port: endpoint.ssh } : {}), knownHosts: [knownHosts], hostKeyPolicy: 'strict', connectTimeout: 10_000 },
    telnet: endpoint.telnet ? { port: endpoint.telnet } : {},
    ftp: endpoint.ftp ? { port: endpoint.ftp } : {},
    commandTimeout: 20_000,
    description: `container ${host.name}`,
    ...extra,
  });
  const target = lab.hosts.target;
  if (target?.endpoints.runner) hosts.target = entry(target, target.endpoints.runner, {});
  const telnet = lab.hosts.telnetOnly;
  if (telnet?.endpoints.runner) hosts.telnet = entry(telnet, telnet.endpoints.runner, { term: 'telnet', transfer: 'ftp' });
  const bastion = lab.hosts.bastion;
  if (bastion?.endpoints.runner) hosts.bastion = entry(bastion, bastion.endpoints.runner, {});
  const mid = lab.hosts.mid;
  if (mid?.endpoints.bastion) hosts.mid = entry(mid, mid.endpoints.bastion, { hop: 'bastion' });
  const inner = lab.hosts.inner;
  if (inner?.endpoints.bastion) hosts.inner = entry(inner, inner.endpoints.bastion, { hop: 'bastion' });
  if (inner?.endpoints.mid && mid) hosts.deep = entry(inner, inner.endpoints.mid, { hop: 'mid' });
  for (const [name, override] of Object.entries(overrides)) {
    const current = hosts[name];
    if (!current) throw new Error(`labInput: no host ${name} in this lab (have ${Object.keys(hosts).join(', ')})`);
    hosts[name] = { ...current, ...override, ssh: { ...current.ssh, ...override.ssh }, telnet: { ...current.telnet, ...override.telnet }, ftp: { ...current.ftp, ...override.ftp } } as HostInput;
  }
  return { hosts };
}

/** Test fixtures: one shared lab per worker (roles `target` and `telnetOnly`) for tests that do not disrupt it. */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- no test-scoped fixtures
export const test = base.extend<{}, { sharedLab: StartedLab }>({
  sharedLab: [
    // eslint-disable-next-line no-empty-pattern -- Playwright requires a destructuring pattern
    async ({}, use) => {
      const lab = await startLab({ roles: ['target', 'telnetOnly'] });
      await use(lab);
      await lab.stop();
    },
    { scope: 'worker', timeout: 30 * 60_000, title: 'container lab' },
  ],
});

/** Starts a private lab for tests that restart, pause or break containers. */
export function privateLab(options: StartLabOptions): Promise<StartedLab> {
  return startLab(options);
}

export { expect } from '@playwright/test';
