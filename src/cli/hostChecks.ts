/**
 * The checks of `labwright check` for one host, in the order a connection needs them:
 * reachable (TCP through the hops, the service's banner), host key known (scanned and
 * looked up under the host's policy), authentication, MaxSessions, the shell answering,
 * the transfer method moving a file both ways, and the round-trip time of a command.
 * A failed check marks the ones that depend on it as not run, with the reason.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';

import type { Host } from '../host/host.js';
import type { Lab } from '../host/lab.js';
import type { RemoteHost } from '../host/remoteHost.js';
import { messageOf } from '../util/errors.js';
import { shellQuote } from '../util/shellQuote.js';
import { formatDuration, withTimeout } from '../util/time.js';

/** `ok`, `failed`, `warning` (works, but see the detail) or `skipped` (could not run). */
export type CheckStatus = 'ok' | 'failed' | 'warning' | 'skipped';

export interface CheckRow {
  name: string;
  status: CheckStatus;
  detail: string;
}

export interface HostReport {
  host: string;
  /** `ssh`, `telnet` or `local`, and the hop chain. */
  summary: string;
  rows: CheckRow[];
  /** False when any check failed. */
  ok: boolean;
}

/** Round trips measured for the median. */
const ROUND_TRIPS = 5;

class CheckFailed extends Error {}

/** The first line a TCP service sends (SSH's version banner), if any within the bound. */
function firstLine(stream: Duplex, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    let text = '';
    const done = (line: string | undefined) => {
      clearTimeout(timer);
      stream.removeListener('data', onData);
      resolve(line);
    };
    const onData = (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\n');
      if (end >= 0) done(text.slice(0, end).trim());
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    stream.on('data', onData);
    stream.once('error', () => done(undefined));
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** Runs the checks of one host. Never throws: every failure becomes a row. */
export async function checkHost(lab: Lab, name: string, boundMs: number): Promise<HostReport> {
  const host = lab.host(name);
  const rows: CheckRow[] = [];
  let blocked: string | undefined;
  /** Runs one check unless an earlier one it depends on failed. */
  const step = async (check: string, body: () => Promise<{ detail: string; status?: CheckStatus }>, needed = true): Promise<boolean> => {
    if (blocked) {
      rows.push({ name: check, status: 'skipped', detail: `not run: ${blocked}` });
      return false;
    }
    try {
      const { detail, status = 'ok' } = await withTimeout(body(), boundMs, () => new CheckFailed(`no answer within ${formatDuration(boundMs)}`));
      rows.push({ name: check, status, detail });
      return true;
    } catch (error) {
      rows.push({ name: check, status: 'failed', detail: messageOf(error) });
      if (needed) blocked = `${check} failed`;
      return false;
    }
  };

  // The runner, and boards whose shells run on their serial console: the shell and exec.
  if (host.kind === 'local' || (host as RemoteHost).config.term === 'console') {
    await shellCheck(host, step);
    await roundTripCheck(host, step);
    return { host: name, summary: host.kind === 'local' ? 'local' : 'console', rows, ok: rows.every((row) => row.status !== 'failed') };
  }
  const remote = host as RemoteHost;
  const { config } = remote;
  const via = remote.path.description !== 'direct' ? ` ${remote.path.description}` : '';
  const port = config.term === 'ssh' ? config.ssh.port : config.telnet.port;
  const connectTimeout = config.term === 'ssh' ? config.ssh.connectTimeout : config.telnet.connectTimeout;

  await step('reachable', async () => {
    const started = Date.now();
    const socket = await remote.path.connect(config.address, port, connectTimeout, { host: name, protocol: config.term });
    const connected = Date.now() - started;
    try {
      const banner = config.term === 'ssh' ? await firstLine(socket, connectTimeout) : undefined;
      if (config.term === 'ssh' && !banner?.startsWith('SSH-')) {
        throw new CheckFailed(
          `${config.address}:${port} accepted the connection but sent no SSH banner${banner ? ` (it sent "${banner.slice(0, 60)}")` : ''}; check the port and that sshd runs`,
        );
      }
      return { detail: `${config.address}:${port}${via}, connected in ${formatDuration(connected)}${banner ? `, ${banner}` : ''}` };
    } finally {
      socket.destroy();
    }
  });

  if (config.term === 'ssh') {
    await step('host key known', async () => {
      const [{ scanHostKey }, { hostKeyStanding }, { fingerprint }] = await Promise.all([
        import('../transport/hostKeyScan.js'),
        import('../transport/hostKeys.js'),
        import('../transport/knownHosts.js'),
      ]);
      const { ssh } = config;
      const key = await scanHostKey({ host: name, address: config.address, port, timeoutMs: ssh.connectTimeout, algorithms: ssh.algorithms }, remote.path);
      const check = { host: name, address: config.address, port, policy: ssh.hostKeyPolicy, knownHosts: ssh.knownHosts, pinFile: ssh.pinFile };
      const { verdict, files, presented } = await hostKeyStanding(check, key);
      if (ssh.hostKeyPolicy === 'off') return { status: 'warning', detail: `${presented}; not checked (ssh.hostKeyPolicy is 'off')` };
      switch (verdict.kind) {
        case 'match':
          return { detail: `${presented} (${verdict.entry.file}:${verdict.entry.line})` };
        case 'unknown':
          if (ssh.hostKeyPolicy === 'accept-new') return { status: 'warning', detail: `${presented} is new; accept-new pins it on first connect` };
          throw new CheckFailed(`${presented} is not in ${files.join(', ')}; verify it and run \`labwright trust ${name}\``);
        case 'revoked':
          throw new CheckFailed(`${presented} is @revoked in ${verdict.entry.file}:${verdict.entry.line}`);
        case 'mismatch':
          throw new CheckFailed(
            `HOST KEY MISMATCH: presented ${presented}, known ${verdict.known.map((entry) => `${fingerprint(entry.key)} (${entry.file}:${entry.line})`).join(', ')}`,
          );
      }
    });
    await step('auth', async () => {
      await remote.connections.ssh();
      return { detail: `as ${remote.connections.user}` };
    });
    await step(
      'MaxSessions',
      async () => {
        const connection = await remote.connections.ssh();
        return { detail: `${connection.budget.capacity} (${connection.budget.source})` };
      },
      false,
    );
  }
  await shellCheck(host, step, config.term === 'telnet' ? `logged in as ${config.user}, ` : '');
  await step(`transfer (${config.transfer})`, () => transferCheck(remote), false);
  await roundTripCheck(host, step);
  return { host: name, summary: `${config.term}${via ? `,${via}` : ''}`, rows, ok: rows.every((row) => row.status !== 'failed') };
}

type Step = (check: string, body: () => Promise<{ detail: string; status?: CheckStatus }>, needed?: boolean) => Promise<boolean>;

async function shellCheck(host: Host, step: Step, prefix = ''): Promise<void> {
  await step('shell answers', async () => {
    const result = (await host.run('echo "$0"')).only;
    if (!result.ok) throw new CheckFailed(`\`echo "$0"\` ended with ${result.error ?? `exit ${result.exitCode}`}`);
    return { detail: `${prefix}${result.output.trim() || 'a shell'} in ${formatDuration(result.durationMs)}` };
  });
}

async function roundTripCheck(host: Host, step: Step): Promise<void> {
  await step(
    'round trip',
    async () => {
      const times: number[] = [];
      for (let i = 0; i < ROUND_TRIPS; i++) {
        const started = performance.now();
        const result = await host.exec('true');
        if (!result.ok) throw new CheckFailed(`\`true\` ended with ${result.error ?? `exit ${result.exitCode}`}`);
        times.push(performance.now() - started);
      }
      return { detail: `${median(times).toFixed(1)} ms (median of ${ROUND_TRIPS} exec)` };
    },
    false,
  );
}

/** Puts a small random file, gets it back, compares, removes the remote copy. */
async function transferCheck(host: RemoteHost): Promise<{ detail: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'labwright-check-'));
  const remote = `/tmp/labwright-check-${randomBytes(6).toString('hex')}`;
  try {
    const data = randomBytes(64 * 1024);
    await writeFile(path.join(dir, 'up'), data);
    const up = await host.put(path.join(dir, 'up'), remote);
    await host.get(remote, path.join(dir, 'down'));
    if (!(await readFile(path.join(dir, 'down'))).equals(data)) throw new CheckFailed(`the file came back different from ${remote}`);
    return { detail: `64 KiB to ${remote} and back by ${up.method}, identical` };
  } finally {
    await host.exec(`rm -f ${shellQuote(remote)}`).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}
