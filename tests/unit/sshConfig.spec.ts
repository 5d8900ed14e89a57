/** OpenSSH client config import: what each directive becomes in the lab, and that the lab wins. */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { expect, test } from '@playwright/test';

import { defineLab } from '../../src/config/defineLab.js';
import { ConfigError } from '../../src/util/errors.js';

function configFile(text: string, extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lw-sshcfg-'));
  for (const [name, content] of Object.entries(extra)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), content);
  }
  const file = path.join(dir, 'config');
  writeFileSync(file, text.replaceAll('$DIR', dir));
  writeFileSync(path.join(dir, 'id_test'), 'not read at definition time');
  return file;
}

test('Host aliases become hosts: HostName with %h, Port, User, IdentityFile, known_hosts files, policy, timeouts', () => {
  const file = configFile(`
Host dut1
  HostName 10.0.0.5
  Port 2222
  User root
  IdentityFile $DIR/missing_key
  IdentityFile $DIR/id_test
  UserKnownHostsFile $DIR/kh1 $DIR/kh2
  StrictHostKeyChecking accept-new
  ConnectTimeout 7
  ServerAliveInterval 2
  ServerAliveCountMax 4
Host board-*
  HostName %h.lab.example
  StrictHostKeyChecking no
Host board-7 plain
Host *
  User fallback
`);
  const lab = defineLab({ sshConfig: file });
  expect(Object.keys(lab.hosts).sort()).toEqual(['board-7', 'dut1', 'plain']);
  const dut1 = lab.hosts.dut1!;
  expect(dut1).toMatchObject({ address: '10.0.0.5', user: 'root', hop: undefined });
  expect(dut1.users.root?.privateKey).toBe(path.join(path.dirname(file), 'id_test'));
  expect(dut1.ssh).toMatchObject({ port: 2222, hostKeyPolicy: 'accept-new', connectTimeout: 7_000, keepaliveInterval: 2_000, keepaliveCountMax: 4 });
  expect(dut1.ssh.knownHosts).toEqual([path.join(path.dirname(file), 'kh1'), path.join(path.dirname(file), 'kh2')]);
  expect(lab.hosts['board-7']).toMatchObject({ address: 'board-7.lab.example', user: 'fallback', ssh: { hostKeyPolicy: 'off', port: 22 } });
  // No HostName: the alias is the address, as ssh does.
  expect(lab.hosts.plain).toMatchObject({ address: 'plain', user: 'fallback' });
});

test('ProxyJump chains become hops; jumps with their own user or port become hosts of their own', () => {
  const file = configFile(`
Host bastion
  HostName jump.example
Host mid
  HostName 192.168.1.2
  ProxyJump bastion
Host deep
  HostName 192.168.2.3
  ProxyJump bastion,mid
Host side
  HostName 192.168.3.4
  ProxyJump ops@jump.example:2200
Host direct
  ProxyJump none
`);
  const lab = defineLab({ sshConfig: { file } });
  expect(lab.hosts.deep?.hop).toBe('mid');
  expect(lab.hosts.mid?.hop).toBe('bastion');
  expect(lab.hosts.bastion?.hop).toBeUndefined();
  expect(lab.hosts.direct?.hop).toBeUndefined();
  const jump = lab.hosts[lab.hosts.side!.hop!]!;
  expect(jump).toMatchObject({ address: 'jump.example', user: 'ops', ssh: { port: 2200 } });
  // Only the wanted aliases (and what their chains need) are imported when hosts is given.
  const only = defineLab({ sshConfig: { file, hosts: ['deep'] } });
  expect(Object.keys(only.hosts).sort()).toEqual(['bastion', 'deep', 'mid']);
});

test('what the lab config says wins, field by field; the SSH user adds its key to a lab user of that name', () => {
  const file = configFile(`
Host dut1
  HostName 10.0.0.5
  Port 2222
  User root
  IdentityFile $DIR/id_test
  StrictHostKeyChecking no
`);
  const lab = defineLab({
    sshConfig: file,
    hosts: {
      dut1: { ssh: { hostKeyPolicy: 'strict' }, users: { root: { password: 'from-the-lab' }, admin: { password: 'admin-pw' } }, user: 'admin' },
    },
  });
  const dut1 = lab.hosts.dut1!;
  expect(dut1.address).toBe('10.0.0.5');
  expect(dut1.ssh).toMatchObject({ port: 2222, hostKeyPolicy: 'strict' });
  expect(dut1.user).toBe('admin');
  expect(dut1.users.root).toEqual({ password: 'from-the-lab', privateKey: path.join(path.dirname(file), 'id_test') });
  // A lab host with users of its own does not take the SSH User as its default.
  const labUsers = defineLab({ sshConfig: file, hosts: { dut1: { users: { admin: { password: 'admin-pw' } } } } });
  expect(labUsers.hosts.dut1!.user).toBe('admin');
  expect(Object.keys(labUsers.hosts.dut1!.users)).toEqual(['admin']);
});

test('Include is followed; a missing file, an unknown wanted alias and a jump loop are config errors', () => {
  const file = configFile('Include $DIR/conf.d/*.conf\n', { 'conf.d/a.conf': 'Host from-include\n  HostName 10.1.1.1\n' });
  expect(defineLab({ sshConfig: file }).hosts['from-include']?.address).toBe('10.1.1.1');
  const problems = (fn: () => unknown) => {
    try {
      fn();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as ConfigError).message;
    }
    throw new Error('no ConfigError');
  };
  expect(problems(() => defineLab({ sshConfig: '/nonexistent/ssh_config' }))).toMatch(/sshConfig: cannot read \/nonexistent\/ssh_config \(no such file\)/);
  expect(problems(() => defineLab({ sshConfig: { file, hosts: ['nope'] } }))).toMatch(
    /sshConfig\.hosts: "nope" is not a Host alias of .*; its aliases: from-include/,
  );
  const loop = configFile('Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n');
  expect(problems(() => defineLab({ sshConfig: loop }))).toMatch(/ProxyJump chain loops: a → b → a|hop chain loops/);
});
