/**
 * `defineLab()`: validates a lab description and returns the resolved configuration the
 * rest of labwright works from. Every problem is collected and reported at once, each
 * naming the host, the field, what was given and what is expected.
 */
import type { z } from 'zod';

import { ConfigError } from '../util/errors.js';
import { registerSecret } from '../util/secrets.js';
import { findHopCycle } from './hops.js';
import { type HostPowerConfig, parseHostPower, parsePdu } from './power.js';
import { fieldsAt, formatIssues, isCredentialPath, suggest } from './problems.js';
import {
  type ConsoleOptions,
  type DefaultsInput,
  defaultsSchema,
  type FtpOptions,
  type HostInput,
  hostSchema,
  labSchema,
  type LifecycleOptions,
  type LocalHostInput,
  localHostSchema,
  type LogsOptions,
  type NcOptions,
  optionGroups,
  type PduConfig,
  type PduInput,
  type ScpOptions,
  type SftpOptions,
  type ShellOptions,
  type SshOptions,
  type TelnetOptions,
  type TerminalProtocol,
  type TransferMethod,
  type UserCredentials,
} from './schema.js';

export type { HostPowerConfig } from './power.js';
import { type LeaseConfig, type LeasesInput, leasesSchema, resolveLeaseConfig } from './leases.js';
import { type SshConfigInput, withSshConfig } from './sshConfig.js';

/** Name of the always-present host that runs commands on the test runner itself. */
export const LOCAL_HOST = 'local';

const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** What `lab.config.ts` passes to {@link defineLab}. */
export interface LabInput {
  /** Remote hosts by name. */
  hosts?: Record<string, HostInput>;
  /** Option values shared by every host; a host's own values win. */
  defaults?: DefaultsInput;
  /** Options of the `local` host. */
  local?: LocalHostInput;
  /** Power controllers by name (PDUs, QEMU monitors, relay scripts), shared by the hosts whose `power` names them. */
  pdus?: Record<string, PduInput>;
  /** Device leases: the store shared by runners (default: embedded, this machine only), TTL, wait bound. */
  leases?: LeasesInput;
  /**
   * Hosts from an OpenSSH client config: `true` reads `~/.ssh/config`, a string names the
   * file, `{ file, hosts }` also picks the aliases to add (default: every alias without
   * wildcards). HostName, Port, User, IdentityFile, ProxyJump (as hops), UserKnownHostsFile,
   * StrictHostKeyChecking, ConnectTimeout and ServerAlive* are used; a host's entry in
   * `hosts` wins field by field.
   */
  sshConfig?: SshConfigInput;
}

/**
 * A lab whose hosts come (partly) from an OpenSSH client config: host entries may leave
 * out what the SSH config provides (address, users).
 */
export interface SshConfigLabInput extends Omit<LabInput, 'hosts' | 'sshConfig'> {
  /** Host entries completing or overriding the SSH config's; `address` and `users` may come from it. */
  hosts?: Record<string, Partial<HostInput>>;
  sshConfig: SshConfigInput;
}

/** Fields shared by local and remote host configurations. */
interface HostConfigBase {
  /** The host's name in the lab. */
  name: string;
  shell: ShellOptions;
  /** What to collect from the host when a test that used it fails. */
  logs: LogsOptions;
  /** Default per-command timeout (ms) on this host, if set. */
  commandTimeout: number | undefined;
  tags: string[];
  resources: Record<string, unknown>;
  description: string | undefined;
}

/** A remote host after validation: defaults applied, secrets resolved. */
export interface RemoteHostConfig extends HostConfigBase {
  kind: 'remote';
  address: string;
  term: TerminalProtocol;
  transfer: TransferMethod;
  hop: string | undefined;
  users: Record<string, UserCredentials>;
  /** Default user (always one of `users`). */
  user: string;
  ssh: SshOptions;
  telnet: TelnetOptions;
  sftp: SftpOptions;
  scp: ScpOptions;
  ftp: FtpOptions;
  nc: NcOptions;
  /** Power control, if the host has any. */
  power: HostPowerConfig | undefined;
  lifecycle: LifecycleOptions;
  /** The serial console, if the host has one. */
  console: ConsoleOptions | undefined;
}

/** The runner itself. */
export interface LocalHostConfig extends HostConfigBase {
  kind: 'local';
  name: typeof LOCAL_HOST;
}

export type HostConfig = RemoteHostConfig | LocalHostConfig;

/** A validated lab. Produced by {@link defineLab}; treat as read-only. */
export interface LabConfig {
  readonly hosts: Readonly<Record<string, RemoteHostConfig>>;
  readonly local: LocalHostConfig;
  /** Power controllers by name (the `pdus` of the lab file). */
  readonly pdus: Readonly<Record<string, PduConfig>>;
  /** Lab-wide default per-command timeout (ms), if set. */
  readonly commandTimeout: number | undefined;
  /** File the lab was loaded from, when known. */
  readonly source: string | undefined;
  /** Lease settings: the store (`$LABWRIGHT_LEASES` wins over `leases.store`; embedded by default), TTL, bounds. */
  readonly leases: LeaseConfig;
}

const LAB_BRAND = Symbol.for('labwright.labConfig');

/** Whether `value` is a lab returned by {@link defineLab}. */
export function isLabConfig(value: unknown): value is LabConfig {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[LAB_BRAND] === true;
}

/** Reads `{ env: 'NAME' }` secrets lazily so that editors show the input type. */
export function env(name: string): { env: string } {
  return { env: name };
}

/** Shallow-merges lab defaults into each option group of a raw host entry. */
function withDefaults(raw: unknown, defaults: Record<string, unknown>): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const merged: Record<string, unknown> = { ...raw };
  for (const group of optionGroups) {
    const fromDefaults = defaults[group];
    if (fromDefaults === undefined) continue;
    const own = merged[group];
    merged[group] = typeof own === 'object' && own !== null ? { ...fromDefaults, ...own } : (own ?? { ...fromDefaults });
  }
  // defaults.commandTimeout stays lab-wide (LabConfig.commandTimeout) so that a runtime
  // option can sit between it and a host's own value.
  return merged;
}

/**
 * Registers every string found where credentials live in a raw, not yet validated host
 * (`users`, secret-looking fields), so that a value in the wrong place (a password given
 * as `users: { root: 'S3cret' }`) is masked in whatever message mentions it.
 */
function registerRawCredentials(value: unknown, path: readonly string[] = []): void {
  if (typeof value === 'string') {
    // Key files, agent sockets and the names of environment variables are not secrets:
    // messages must be able to name them.
    const field = path[path.length - 1];
    if (isCredentialPath(path) && field !== 'privateKey' && field !== 'agent' && field !== 'env') registerSecret(value);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  for (const [key, inner] of Object.entries(value)) registerRawCredentials(inner, [...path, key]);
}

function registerHostSecrets(users: Record<string, UserCredentials>, host: z.output<typeof hostSchema>): void {
  for (const user of Object.values(users)) {
    registerSecret(user.password);
    registerSecret(user.passphrase);
    registerSecret(user.totp);
  }
  for (const rule of host.ssh.keyboardInteractive ?? []) {
    if (typeof rule.answer === 'object') registerSecret(rule.answer.secret);
  }
}

/**
 * Validates a lab description. Throws a {@link ConfigError} listing every problem.
 *
 * ```ts
 * export default defineLab({
 *   hosts: {
 *     bastion: { address: 'jump.lab', users: { ops: { privateKey: '~/.ssh/id_ed25519' } } },
 *     dut1: { address: '10.0.0.5', hop: 'bastion', users: { root: { password: env('DUT1_PW') } } },
 *   },
 * });
 * ```
 */
export function defineLab(input: LabInput, source?: string): LabConfig;
export function defineLab(input: SshConfigLabInput, source?: string): LabConfig;
export function defineLab(input: LabInput | SshConfigLabInput, source?: string): LabConfig {
  const problems: string[] = [];
  const top = labSchema.safeParse(input, { reportInput: true });
  if (!top.success) {
    throw new ConfigError(
      formatIssues('lab', top.error.issues, (p) => fieldsAt(labSchema, p)),
      source,
    );
  }

  const defaultsResult = defaultsSchema.safeParse(top.data.defaults ?? {}, { reportInput: true });
  if (!defaultsResult.success) {
    problems.push(...formatIssues('lab defaults', defaultsResult.error.issues, (p) => fieldsAt(defaultsSchema, p)));
  }
  // Invalid defaults are reported once, as defaults, rather than again under every host.
  const rawDefaults = (defaultsResult.success ? (top.data.defaults ?? {}) : {}) as Record<string, unknown>;

  let rawHosts = top.data.hosts;
  if (top.data.sshConfig !== undefined) {
    const imported = withSshConfig(rawHosts, top.data.sshConfig);
    problems.push(...imported.problems);
    rawHosts = imported.hosts;
  }

  const pdus: Record<string, PduConfig> = {};
  for (const [name, raw] of Object.entries(top.data.pdus)) {
    registerRawCredentials(raw);
    const parsed = parsePdu(raw, `pdu "${name}"`);
    if ('problems' in parsed) problems.push(...parsed.problems);
    else pdus[name] = parsed.pdu;
  }

  const hosts: Record<string, RemoteHostConfig> = {};
  const rawPower = new Map<string, unknown>();
  const names = Object.keys(rawHosts);
  for (const [name, raw] of Object.entries(rawHosts)) {
    const where = `host "${name}"`;
    if (name === LOCAL_HOST) {
      problems.push(`${where}: the name "local" is reserved for the runner; configure it under "local" instead of "hosts"`);
      continue;
    }
    if (!HOST_NAME.test(name)) {
      problems.push(`${where}: host names use letters, digits, ".", "_" and "-" and start with a letter or digit`);
      continue;
    }
    registerRawCredentials(raw);
    const parsed = hostSchema.safeParse(withDefaults(raw, rawDefaults), { reportInput: true });
    if (!parsed.success) {
      problems.push(...formatIssues(where, parsed.error.issues, (p) => fieldsAt(hostSchema, p)));
      continue;
    }
    const host = parsed.data;
    const userNames = Object.keys(host.users);
    const user = host.user ?? userNames[0]!;
    if (!host.users[user]) {
      const hint = suggest(user, userNames);
      problems.push(`${where} → user: "${user}" is not one of its users (${userNames.join(', ')})${hint ? `; did you mean "${hint}"?` : ''}`);
    }
    if (host.address === undefined && !host.console) problems.push(`${where} → address: required (only a host with a console may leave it out)`);
    if (host.term === 'console' && !host.console) problems.push(`${where} → term: "console" needs a console section (console: { transport, port | path })`);
    if (host.console?.user !== undefined && !host.users[host.console.user]) {
      problems.push(`${where} → console.user: "${host.console.user}" is not one of its users (${userNames.join(', ')})`);
    }
    if (host.console?.transport === 'serial' && host.hop !== undefined) {
      problems.push(
        `${where} → console.transport: a serial device is local to the runner and cannot be reached through hop "${host.hop}"; put the device behind ser2net or a terminal server (transport "tcp" or "telnet")`,
      );
    }
    if (host.ftp.user !== undefined && !host.users[host.ftp.user]) {
      const hint = suggest(host.ftp.user, userNames);
      problems.push(`${where} → ftp.user: "${host.ftp.user}" is not one of its users (${userNames.join(', ')})${hint ? `; did you mean "${hint}"?` : ''}`);
    }
    registerHostSecrets(host.users, host);
    if (host.power !== undefined) rawPower.set(name, host.power);
    hosts[name] = {
      kind: 'remote',
      name,
      // A console-only board needs no network address; messages then name the console's.
      address: host.address ?? host.console?.address ?? 'localhost',
      term: host.term,
      transfer: host.transfer ?? (host.term === 'telnet' ? 'ftp' : 'sftp'),
      hop: host.hop,
      users: host.users,
      user,
      ssh: host.ssh,
      telnet: host.telnet,
      sftp: host.sftp,
      scp: host.scp,
      ftp: host.ftp,
      nc: host.nc,
      power: undefined,
      lifecycle: host.lifecycle,
      console: host.console,
      shell: host.shell,
      logs: host.logs,
      commandTimeout: host.commandTimeout,
      tags: host.tags,
      resources: host.resources,
      description: host.description,
    };
  }

  // Hops: each must name another SSH host of the lab; chains must not loop.
  for (const host of Object.values(hosts)) {
    if (host.hop === undefined) continue;
    const where = `host "${host.name}" → hop`;
    if (host.hop === host.name) problems.push(`${where}: a host cannot be its own hop`);
    else if (host.hop === LOCAL_HOST) problems.push(`${where}: "local" cannot be a hop; leave hop out to connect directly`);
    else if (!hosts[host.hop]) {
      if (names.includes(host.hop)) continue; // the hop itself is invalid and already reported
      const hint = suggest(host.hop, names);
      problems.push(
        `${where}: names "${host.hop}", which is not a host of this lab${hint ? ` (did you mean "${hint}"?)` : ''}; known hosts: ${names.join(', ') || 'none'}`,
      );
    } else if (hosts[host.hop]!.term !== 'ssh') {
      problems.push(`${where}: "${host.hop}" is a ${hosts[host.hop]!.term} host; a hop must speak SSH`);
    }
  }
  // Power: a host's `power` names a PDU of the lab or brings a driver of its own; a command
  // driver may run on another lab host.
  for (const [name, raw] of rawPower) {
    const parsed = parseHostPower(raw, `host "${name}" → power`, name, pdus, Object.keys(top.data.pdus));
    if ('problems' in parsed) problems.push(...parsed.problems);
    else hosts[name] = { ...hosts[name]!, power: parsed.power };
  }
  const drivers: Array<[string, PduConfig]> = [
    ...Object.entries(pdus).map(([name, pdu]): [string, PduConfig] => [`pdu "${name}"`, pdu]),
    ...Object.values(hosts).flatMap((host): Array<[string, PduConfig]> => (host.power?.own ? [[`host "${host.name}" → power`, host.power.driver]] : [])),
  ];
  for (const [where, pdu] of drivers) {
    if (pdu.driver !== 'command' || pdu.runOn === undefined || pdu.runOn === LOCAL_HOST || hosts[pdu.runOn] || names.includes(pdu.runOn)) continue;
    const hint = suggest(pdu.runOn, names);
    problems.push(
      `${where} → runOn: names "${pdu.runOn}", which is not a host of this lab${hint ? ` (did you mean "${hint}"?)` : ''}; leave it out to run on the runner`,
    );
  }

  const cycle = findHopCycle(hosts);
  if (cycle) problems.push(`hop chain loops: ${cycle.join(' → ')}; break the loop by removing one "hop"`);

  const localParsed = localHostSchema.safeParse(withDefaults(top.data.local ?? {}, { shell: rawDefaults.shell, logs: rawDefaults.logs }), {
    reportInput: true,
  });
  if (!localParsed.success) {
    problems.push(...formatIssues('local host', localParsed.error.issues, (p) => fieldsAt(localHostSchema, p)));
  }

  const leases = resolveLeaseConfig(top.data.leases, (issues) =>
    formatIssues(
      'lab',
      issues.map((issue) => ({ ...issue, path: ['leases', ...issue.path] })),
      (p) => fieldsAt(leasesSchema, p.slice(1)),
    ),
  );
  problems.push(...leases.problems);

  if (problems.length > 0) throw new ConfigError(problems, source);

  const local = localParsed.data!;
  const lab: LabConfig = {
    hosts,
    local: {
      kind: 'local',
      name: LOCAL_HOST,
      shell: local.shell,
      logs: local.logs,
      commandTimeout: local.commandTimeout,
      tags: local.tags,
      resources: local.resources,
      description: local.description,
    },
    pdus,
    commandTimeout: defaultsResult.data?.commandTimeout,
    source,
    leases: leases.config!,
  };
  return brand(lab);
}

function brand(lab: LabConfig): LabConfig {
  Object.defineProperty(lab, LAB_BRAND, { value: true, enumerable: false });
  return lab;
}

/** The same lab, recording the file it was loaded from (used in error messages). */
export function withLabSource(lab: LabConfig, source: string): LabConfig {
  return brand({ ...lab, source });
}
