/**
 * Lab hosts from an OpenSSH client config (`~/.ssh/config` or a given file), parsed with
 * the `ssh-config` package: `Host` aliases with HostName, Port, User, IdentityFile,
 * ProxyJump chains (as hops), UserKnownHostsFile, StrictHostKeyChecking, ConnectTimeout
 * and ServerAlive*. What the lab config says about a host wins over what the SSH config says.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import SSHConfig, { glob } from 'ssh-config';

import type { HostInput } from './schema.js';

/** Where to read an OpenSSH client config and which of its hosts to add to the lab. */
export interface SshConfigOptions {
  /** The config file (`~` expanded). Default: `~/.ssh/config`. */
  file?: string;
  /**
   * `Host` aliases added to the lab as hosts of the same name. Default: every alias the
   * file names without wildcards. Lab hosts whose name matches a `Host` pattern take its
   * settings in any case.
   */
  hosts?: string[];
}

/** `true` for `~/.ssh/config`, a file path, or {@link SshConfigOptions}. */
export type SshConfigInput = true | string | SshConfigOptions;

/** The default OpenSSH client config of the user running labwright. */
export const DEFAULT_SSH_CONFIG = '~/.ssh/config';

/** Identity files OpenSSH tries when a host names none, in its order. */
const DEFAULT_IDENTITIES = ['~/.ssh/id_ed25519', '~/.ssh/id_ecdsa', '~/.ssh/id_rsa'];

const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

type Computed = Record<string, string | string[]>;

function expandTilde(file: string): string {
  if (file === '~') return os.homedir();
  return file.startsWith('~/') ? path.join(os.homedir(), file.slice(2)) : file;
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function list(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).flatMap((item) => item.split(/\s+/)).filter(Boolean);
}

/** OpenSSH's `%` tokens that make sense without a connection. */
function expandTokens(text: string, alias: string, user: string | undefined): string {
  return text.replace(/%([%hndur])/g, (_, token: string) => {
    switch (token) {
      case '%':
        return '%';
      case 'h':
      case 'n':
        return alias;
      case 'd':
        return os.homedir();
      case 'u':
        return os.userInfo().username;
      default:
        return user ?? os.userInfo().username;
    }
  });
}

/** Files an `Include` names: relative to ~/.ssh, wildcards in the last component. */
function includedFiles(pattern: string): string[] {
  const absolute = path.resolve(path.join(os.homedir(), '.ssh'), expandTilde(pattern));
  const base = path.basename(absolute);
  if (!/[*?]/.test(base)) return existsSync(absolute) ? [absolute] : [];
  const matcher = new RegExp(
    `^${base
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  try {
    return readdirSync(path.dirname(absolute))
      .filter((name) => matcher.test(name))
      .sort()
      .map((name) => path.join(path.dirname(absolute), name));
  } catch {
    return [];
  }
}

/** The config text with `Include` lines replaced by the files they name (ssh-config does not follow them). */
function readWithIncludes(file: string, depth = 0): string {
  if (depth > 16) throw new Error(`Include nesting deeper than 16 levels at ${file}`);
  return readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((line) => {
      const include = /^\s*Include\s+(.+?)\s*$/i.exec(line);
      if (!include) return line;
      return include[1]!
        .split(/\s+/)
        .flatMap(includedFiles)
        .map((included) => readWithIncludes(included, depth + 1))
        .join('\n');
    })
    .join('\n');
}

/** Aliases a config names on `Host` lines without wildcards or negation, in file order. */
function concreteAliases(config: SSHConfig): string[] {
  const aliases: string[] = [];
  for (const line of config) {
    if (line.type !== SSHConfig.DIRECTIVE || !/^host$/i.test(line.param)) continue;
    const values = typeof line.value === 'string' ? line.value.split(/\s+/) : line.value.map((v) => v.val);
    for (const value of values) if (value && !/[*?!]/.test(value) && !aliases.includes(value)) aliases.push(value);
  }
  return aliases;
}

/** One parsed config, with lookups by host name. */
export class OpenSshConfig {
  /** Aliases named on `Host` lines without wildcards. */
  readonly aliases: readonly string[];

  private constructor(
    private readonly config: SSHConfig,
    /** The file it was read from. */
    readonly file: string,
  ) {
    this.aliases = concreteAliases(config);
  }

  /** Reads `file` (default `~/.ssh/config`), following `Include`. Throws with the OS reason when unreadable. */
  static read(file = DEFAULT_SSH_CONFIG): OpenSshConfig {
    const absolute = path.resolve(expandTilde(file));
    return new OpenSshConfig(SSHConfig.parse(readWithIncludes(absolute)), absolute);
  }

  /** Settings for `name` as OpenSSH computes them (first value wins), keys in lower case. */
  settings(name: string): Computed {
    // `Match exec` would run commands from the file: never while reading a lab.
    return this.config.compute(name, { ignoreCase: true, matchExec: false }) as Computed;
  }

  /** Whether a `Host` line of the config names `name` by a pattern other than a bare `*`. */
  knows(name: string): boolean {
    for (const line of this.config) {
      if (line.type !== SSHConfig.DIRECTIVE || !/^host$/i.test(line.param)) continue;
      const patterns = (typeof line.value === 'string' ? line.value.split(/\s+/) : line.value.map((v) => v.val)).filter((p) => p !== '*');
      if (patterns.length > 0 && glob(patterns, name)) return true;
    }
    return false;
  }

  /**
   * The lab host entry for `name` as this config describes it (address, port, user and key,
   * known_hosts files, host key policy, timeouts; not the hop, see {@link jumps}).
   */
  hostEntry(name: string): HostInput {
    const s = this.settings(name);
    const user = first(s.user);
    const address = expandTokens(first(s.hostname) ?? name, name, user);
    const ssh: NonNullable<HostInput['ssh']> = {};
    const port = Number(first(s.port));
    if (Number.isInteger(port) && port > 0) ssh.port = port;
    const knownHosts = list(s.userknownhostsfile).map((file) => expandTokens(file, name, user));
    if (knownHosts.length > 0 && !knownHosts.includes('none')) ssh.knownHosts = knownHosts;
    const strict = first(s.stricthostkeychecking)?.toLowerCase();
    if (strict === 'yes' || strict === 'ask') ssh.hostKeyPolicy = 'strict';
    else if (strict === 'accept-new') ssh.hostKeyPolicy = 'accept-new';
    else if (strict === 'no' || strict === 'off') ssh.hostKeyPolicy = 'off';
    const seconds = (key: string) => {
      const value = Number(first(s[key]));
      return Number.isFinite(value) && value >= 0 ? Math.round(value * 1000) : undefined;
    };
    const connectTimeout = seconds('connecttimeout');
    if (connectTimeout) ssh.connectTimeout = connectTimeout;
    const keepalive = seconds('serveraliveinterval');
    if (keepalive !== undefined) ssh.keepaliveInterval = keepalive;
    const countMax = Number(first(s.serveralivecountmax));
    if (Number.isInteger(countMax) && countMax >= 1) ssh.keepaliveCountMax = countMax;

    const login = user ?? os.userInfo().username;
    const identities = list(s.identityfile)
      .filter((file) => file.toLowerCase() !== 'none')
      .map((file) => expandTokens(file, name, login));
    const privateKey = (identities.length > 0 ? identities : DEFAULT_IDENTITIES).find((file) => existsSync(expandTilde(file)));
    const identityAgent = first(s.identityagent);
    const agent =
      identityAgent?.toLowerCase() === 'none'
        ? undefined
        : identityAgent && identityAgent !== 'SSH_AUTH_SOCK'
          ? expandTilde(identityAgent)
          : process.env.SSH_AUTH_SOCK
            ? true
            : undefined;
    return {
      address,
      ssh,
      users: { [login]: { ...(privateKey ? { privateKey } : {}), ...(agent !== undefined ? { agent } : {}) } },
      user: login,
      description: `from ${this.file} (Host ${name})`,
    };
  }

  /** The ProxyJump chain of `name`, outermost first (`[]` for none), as `[user@]host[:port]` specs. */
  jumps(name: string): string[] {
    const value = first(this.settings(name).proxyjump);
    if (!value || value.toLowerCase() === 'none') return [];
    return value
      .split(',')
      .map((jump) => jump.trim())
      .filter(Boolean);
  }
}

/** A ProxyJump element: `[user@]host[:port]` (or `ssh://[user@]host[:port]`). */
function parseJump(spec: string): { user?: string; host: string; port?: number } {
  const match = /^(?:ssh:\/\/)?(?:([^@]+)@)?(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(spec);
  if (!match) return { host: spec };
  return { ...(match[1] ? { user: match[1] } : {}), host: match[2]!.replace(/^\[|\]$/g, ''), ...(match[3] ? { port: Number(match[3]) } : {}) };
}

/** A lab host name for a jump spec that is not a plain alias. */
function jumpName(spec: string): string {
  return spec
    .replace(/^ssh:\/\//, '')
    .replace(/@/g, '-at-')
    .replace(/[:[\]]/g, '-')
    .replace(/[^A-Za-z0-9_.-]/g, '_')
    .replace(/-+$/, '');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Merges a lab host entry over what the SSH config says about it: the lab's fields win, its
 * `ssh` options win one by one, and users of the same name are merged field by field. When
 * the lab lists users, the SSH config's `User` only adds credentials to a lab user of that name.
 */
function overSshConfig(fromSsh: HostInput, lab: unknown): unknown {
  if (!isRecord(lab)) return lab;
  const merged: Record<string, unknown> = { ...fromSsh, ...lab };
  if (isRecord(lab.ssh)) merged.ssh = { ...fromSsh.ssh, ...lab.ssh };
  if (isRecord(lab.users)) {
    const users: Record<string, unknown> = { ...lab.users };
    for (const [name, credentials] of Object.entries(fromSsh.users)) {
      if (isRecord(users[name])) users[name] = { ...credentials, ...users[name] };
    }
    merged.users = users;
    if (lab.user === undefined) delete merged.user;
  }
  return merged;
}

/** What {@link withSshConfig} produced: the lab's hosts with the SSH config applied, and problems found. */
export interface SshConfigResult {
  hosts: Record<string, unknown>;
  problems: string[];
}

/** Reads the config an input names; a problem (not an exception) when it cannot be read. */
function readSshConfig(input: SshConfigInput): { config?: OpenSshConfig; wanted?: string[]; problem?: string } {
  const options: SshConfigOptions = input === true ? {} : typeof input === 'string' ? { file: input } : input;
  const file = options.file ?? DEFAULT_SSH_CONFIG;
  try {
    return { config: OpenSshConfig.read(file), ...(options.hosts ? { wanted: options.hosts } : {}) };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return {
      problem: `sshConfig: cannot read ${file}${code === 'ENOENT' ? ' (no such file)' : `: ${(error as Error).message}`}; fix the path or leave sshConfig out`,
    };
  }
}

/**
 * The lab's hosts with an OpenSSH client config applied: every lab host whose name the
 * config describes takes its settings where the lab is silent; the wanted aliases (all
 * concrete ones by default) are added; ProxyJump chains become hops, adding the jump hosts.
 * `local` is never taken from the config.
 */
export function withSshConfig(labHosts: Record<string, unknown>, input: SshConfigInput): SshConfigResult {
  const { config, wanted, problem } = readSshConfig(input);
  if (!config) return { hosts: labHosts, problems: [problem!] };
  const problems: string[] = [];
  const hosts: Record<string, unknown> = { ...labHosts };
  const fromConfig = new Set<string>();

  /** Adds host `name` from the config, completed by the lab's entry of that name if any. */
  const resolve = (name: string, stack: readonly string[]): void => {
    if (fromConfig.has(name)) return;
    fromConfig.add(name);
    const entry = config.hostEntry(name);
    const hop = chain(config.jumps(name), [...stack, name]);
    if (hop) entry.hop = hop;
    hosts[name] = name in labHosts ? overSshConfig(entry, labHosts[name]) : entry;
  };

  /**
   * The lab name of the last host of a ProxyJump chain; each element is reached through
   * the one before it (as `ssh -J a,b` does), the first through its own ProxyJump.
   */
  const chain = (specs: readonly string[], stack: readonly string[]): string | undefined => {
    let previous: string | undefined;
    for (const spec of specs) previous = jumpHost(spec, previous, stack);
    return previous;
  };

  const jumpHost = (spec: string, previous: string | undefined, stack: readonly string[]): string => {
    const jump = parseJump(spec);
    const plain = jump.user === undefined && jump.port === undefined;
    if (plain && previous === undefined) {
      if (stack.includes(jump.host)) problems.push(`sshConfig: ProxyJump chain loops: ${[...stack, jump.host].join(' → ')} in ${config.file}`);
      else resolve(jump.host, stack);
      return jump.host;
    }
    if (plain && config.knows(jump.host) && !stack.includes(jump.host)) {
      // `ProxyJump a,b` where b's own ProxyJump is a: b as it is.
      resolve(jump.host, stack);
      if (isRecord(hosts[jump.host]) && (hosts[jump.host] as HostInput).hop === previous) return jump.host;
    }
    // A jump with its own user or port, or reached through another jump, is a host of its own.
    const name = (plain ? jump.host : jumpName(spec)) + (previous ? `-via-${previous}` : '');
    if (name in hosts || stack.includes(name)) return name;
    const entry = config.hostEntry(jump.host);
    if (jump.port !== undefined) entry.ssh = { ...entry.ssh, port: jump.port };
    if (jump.user !== undefined) {
      entry.users = { [jump.user]: Object.values(entry.users)[0] ?? {} };
      entry.user = jump.user;
    }
    const hop = previous ?? chain(config.jumps(jump.host), [...stack, name]);
    if (hop) entry.hop = hop;
    hosts[name] = entry;
    return name;
  };

  const aliases = wanted ?? config.aliases.filter((alias) => HOST_NAME.test(alias) && alias !== 'local');
  for (const alias of wanted ?? []) {
    if (!config.aliases.includes(alias))
      problems.push(`sshConfig.hosts: "${alias}" is not a Host alias of ${config.file}; its aliases: ${config.aliases.join(', ') || 'none'}`);
  }
  for (const alias of aliases) if (config.aliases.includes(alias)) resolve(alias, []);
  // Lab hosts the config describes by pattern (Host *.lab) take its settings too.
  for (const name of Object.keys(labHosts)) {
    if (!fromConfig.has(name) && config.knows(name)) resolve(name, []);
  }
  return { hosts, problems };
}
