/**
 * Reverse SFTP share (after python-x2go's reverse-forwarded SFTP server): a runner folder
 * offered to a remote host with no SSH server on the runner. The device's sshd listens on
 * its loopback (a remote forward on the host's own SSH connection, so it works through
 * hops); each connection to that port arrives here as a forwarded channel and is served
 * by an in-process SSH server that offers only SFTP, confined to the folder.
 *
 * Access: a one-time host key and a one-time client key per share. The client's private
 * key and a known_hosts line for the host key are written on the device (mode 0600 under
 * `~/.cache/labwright/share-<id>/`, the key through stdin, never on a command line) and
 * removed when the share stops. Any other key is refused; so are passwords.
 */
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';

import type { RemoteRunner } from '../transfer/types.js';
import type { Forward } from '../transport/forwarding.js';
import { LabwrightError, messageOf } from '../util/errors.js';
import { registerSecret } from '../util/secrets.js';
import { shellWord } from '../util/shellQuote.js';
import { withTimeout } from '../util/time.js';
import { oneTimeKeyPair } from './oneTimeKeys.js';
import { ShareRoot } from './shareRoot.js';
import { ShareServer } from './shareServer.js';

/** Options of `host.share()`. */
export interface ShareOptions {
  /** Refuse every write (open for writing, mkdir, rmdir, remove, rename, setstat, symlink). Default false. */
  readOnly?: boolean;
  /** Port on the device's loopback; default: a free one chosen by the device. */
  remotePort?: number;
}

/** What a share needs from its host. */
export interface ShareDeps {
  host: string;
  /** Runs commands on the device (key installation and removal). */
  runner: RemoteRunner;
  /** Asks the device for a loopback remote forward whose channels go to `handler`. */
  forward: (handler: (stream: Duplex) => void, remotePort: number | undefined) => Promise<Forward>;
  /** Bound of each remote command. */
  commandTimeout: number;
  /** Lifecycle, for transcripts. */
  onEvent?: (event: 'connected' | 'closed' | 'lost', detail: string) => void;
}

/** The remote client commands for a share, as far as the device has them. */
export interface ShareClientCommands {
  /** `sftp …` command line, or undefined when the device has no `sftp`. */
  sftp: string | undefined;
  /** `sshfs …` command line mounting the share at the mount point, or undefined. */
  sshfs: string | undefined;
  /** Why a client cannot be used on this device, by client. */
  unavailable: Partial<Record<'sftp' | 'sshfs', string>>;
}

/** User name in the client command lines (the share accepts any name: the key is what counts). */
const SHARE_USER = 'share';
/** Address the device reaches the share at: the forward is bound to its loopback. */
const SHARE_ADDRESS = '127.0.0.1';
/** sftp's read/write size (-B): the server answers reads up to 256 KiB. */
const SFTP_BUFFER = 128 * 1024;
/** Bound of a whole stop(). */
const STOP_BOUND = 20_000;

/** Masks a private key in anything that might ever print it (its base64 lines). */
function registerPrivateKey(privateKey: string): void {
  for (const line of privateKey.split('\n')) if (!line.startsWith('-----') && line.length >= 16) registerSecret(line.trim());
}

/**
 * A running share. Stop it with `stop()` (or `await using`); `host.close()` stops every
 * share of the host.
 */
export class Share implements AsyncDisposable {
  private stopping: Promise<void> | undefined;
  private pausedState = false;

  private constructor(
    private readonly deps: ShareDeps,
    private readonly server: ShareServer,
    private readonly forward: Forward,
    /** Random id of this share (in the remote directory name). */
    readonly id: string,
    /** The shared folder (canonical runner path). */
    readonly localDir: string,
    /** Whether writes are refused. */
    readonly readOnly: boolean,
    /** Remote directory holding the key and known_hosts file. */
    readonly remoteDir: string,
    /** The host's public key (`ssh-ed25519 AAAA…`) clients are told to expect. */
    readonly hostPublicKey: string,
  ) {}

  /** Starts a share; used by `RemoteHost.share()`. */
  static async start(localDir: string, options: ShareOptions, deps: ShareDeps): Promise<Share> {
    const context = { host: deps.host, protocol: 'share' as const };
    let root: ShareRoot;
    try {
      root = await ShareRoot.open(localDir);
    } catch (error) {
      throw new LabwrightError(`cannot share ${localDir}: ${messageOf(error)}.`, {
        ...context,
        hint: 'Give an existing directory on the runner.',
        cause: error,
      });
    }
    const id = randomBytes(6).toString('hex');
    const hostKey = oneTimeKeyPair(`labwright-share-${id}-host`);
    const clientKey = oneTimeKeyPair(`labwright-share-${id}`);
    registerPrivateKey(hostKey.privateKey);
    registerPrivateKey(clientKey.privateKey);
    const readOnly = options.readOnly ?? false;
    let server: ShareServer;
    try {
      server = new ShareServer({
        root,
        readOnly,
        hostKey: hostKey.privateKey,
        clientKey: clientKey.publicKey,
        onProblem: (detail) => deps.onEvent?.('lost', `share ${id}: ${detail}`),
      });
    } catch (error) {
      throw new LabwrightError(`cannot start the share's SSH server: ${messageOf(error)}.`, {
        ...context,
        hint: 'This is a labwright fault; please report it.',
        cause: error,
      });
    }

    let forward: Forward;
    const requested = deps.forward((stream) => server.accept(stream), options.remotePort);
    try {
      forward = await withTimeout(
        requested,
        deps.commandTimeout,
        () =>
          new LabwrightError(`the device did not grant the remote forward within ${deps.commandTimeout / 1000} s.`, {
            ...context,
            hint: 'Check that the device answers over SSH and allows remote forwarding (AllowTcpForwarding).',
          }),
      );
    } catch (error) {
      // A grant arriving after the bound must not leave a listener behind.
      requested.then(
        (late) => late.close(),
        () => {},
      );
      await server.close();
      throw error;
    }
    const hostPublicKey = hostKey.publicKey.split(' ').slice(0, 2).join(' ');
    const knownHostsLine = `[${SHARE_ADDRESS}]:${forward.port} ${hostPublicKey}`;
    let remoteDir: string;
    try {
      remoteDir = await installKeys(deps, id, clientKey.privateKey, knownHostsLine);
    } catch (error) {
      await server.close();
      await forward.close().catch(() => {});
      throw error;
    }
    const share = new Share(deps, server, forward, id, root.real, readOnly, remoteDir, hostPublicKey);
    deps.onEvent?.('connected', `share ${id}: ${root.real} on ${SHARE_ADDRESS}:${forward.port}${readOnly ? ' (read-only)' : ''}`);
    return share;
  }

  /** Port of the share on the device's loopback. */
  get remotePort(): number {
    return this.forward.port;
  }

  /** Address of the share as seen from the device. */
  get address(): string {
    return SHARE_ADDRESS;
  }

  /** User name the command lines log in as. */
  get user(): string {
    return SHARE_USER;
  }

  /** The one-time client private key on the device (absolute path). */
  get keyFile(): string {
    return `${this.remoteDir}/id_ed25519`;
  }

  /** known_hosts file on the device with the share's host key. */
  get knownHostsFile(): string {
    return `${this.remoteDir}/known_hosts`;
  }

  /** Whether the share refuses connections right now. */
  get paused(): boolean {
    return this.pausedState;
  }

  /** Client connections open right now. */
  get connections(): number {
    return this.server.connectionCount;
  }

  /** Whether `stop()` was called. */
  get stopped(): boolean {
    return this.stopping !== undefined;
  }

  /** ssh options every client command carries: this key only, this host key only, no agent, no prompts. */
  private sshOptions(): string[] {
    return [
      `IdentityFile=${this.keyFile}`,
      'IdentitiesOnly=yes',
      'IdentityAgent=none',
      `UserKnownHostsFile=${this.knownHostsFile}`,
      'GlobalKnownHostsFile=/dev/null',
      'StrictHostKeyChecking=yes',
      'PreferredAuthentications=publickey',
      'BatchMode=yes',
    ].flatMap((option) => ['-o', option]);
  }

  /**
   * The exact `sftp` command line to run on the device. `args` go before the destination,
   * e.g. `['-b', '-']` to read sftp commands from stdin.
   */
  sftpCommand(args: readonly string[] = []): string {
    // -F /dev/null: the device user's ssh_config (ProxyJump, ControlMaster...) must not interfere.
    // -B 131072: 128 KiB reads instead of 32 KiB; every reply crosses two SSH layers, so fewer,
    // larger ones fetch about 1.3 times faster (measured against the container lab).
    const words = [
      'sftp',
      '-F',
      '/dev/null',
      ...this.sshOptions(),
      '-B',
      String(SFTP_BUFFER),
      '-P',
      String(this.remotePort),
      ...args,
      `${SHARE_USER}@${SHARE_ADDRESS}`,
    ];
    return words.map(shellWord).join(' ');
  }

  /** The exact `sshfs` command line mounting the share at `mountPoint` on the device; `args` are extra sshfs options. */
  sshfsCommand(mountPoint: string, args: readonly string[] = []): string {
    const words = ['sshfs', '-F', '/dev/null', '-p', String(this.remotePort), ...this.sshOptions(), ...args, `${SHARE_USER}@${SHARE_ADDRESS}:/`, mountPoint];
    return words.map(shellWord).join(' ');
  }

  /**
   * The command lines the device can use, after checking what it has: `sftp` and `sshfs`
   * installed, and for sshfs a FUSE device it can open. Reasons say why a client is out.
   */
  async clientCommands(mountPoint: string): Promise<ShareClientCommands> {
    const probe = await this.deps.runner.run(
      'command -v sftp >/dev/null 2>&1 && echo sftp=ok || echo sftp=missing; ' +
        'command -v sshfs >/dev/null 2>&1 && echo sshfs=ok || echo sshfs=missing; ' +
        'if [ ! -c /dev/fuse ]; then echo fuse=missing; elif [ -r /dev/fuse ] && [ -w /dev/fuse ]; then echo fuse=ok; else echo fuse=denied; fi',
      { timeout: this.deps.commandTimeout },
    );
    const facts = new Map(
      probe.stdout
        .split('\n')
        .filter((line) => line.includes('='))
        .map((line) => line.trim().split('=') as [string, string]),
    );
    const unavailable: ShareClientCommands['unavailable'] = {};
    if (facts.get('sftp') !== 'ok') unavailable.sftp = 'the device has no sftp client (OpenSSH client) on its PATH';
    if (facts.get('sshfs') !== 'ok') unavailable.sshfs = 'the device has no sshfs on its PATH';
    else if (facts.get('fuse') === 'missing') unavailable.sshfs = 'the device has no /dev/fuse (containers need --device /dev/fuse and CAP_SYS_ADMIN)';
    else if (facts.get('fuse') !== 'ok') unavailable.sshfs = 'the device user cannot open /dev/fuse';
    return {
      sftp: unavailable.sftp ? undefined : this.sftpCommand(),
      sshfs: unavailable.sshfs ? undefined : this.sshfsCommand(mountPoint),
      unavailable,
    };
  }

  /** Refuses new connections and closes the open ones (open files on the runner are closed). */
  pause(): void {
    if (this.stopped) return;
    this.pausedState = true;
    this.server.pause();
  }

  /** Accepts connections again. */
  resume(): void {
    if (this.stopped) return;
    this.pausedState = false;
    this.server.resume();
  }

  /**
   * Stops the share: closes every connection, cancels the remote forward (same address and
   * port it was requested with) and removes the key files from the device. Idempotent and
   * bounded; rejects, after doing all it can, when the key files could not be removed.
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.pausedState = true;
    const context = { host: this.deps.host, protocol: 'share' as const };
    const work = (async () => {
      await this.server.close();
      await this.forward.close().catch(() => {});
      return removeKeys(this.deps, this.remoteDir);
    })();
    const problem = await withTimeout(work, STOP_BOUND, () => new Error(`stopping took longer than ${STOP_BOUND / 1000} s`)).catch((error: unknown) =>
      messageOf(error),
    );
    this.deps.onEvent?.('closed', `share ${this.id} stopped${problem ? `; ${problem}` : ''}`);
    if (problem) {
      throw new LabwrightError(`share ${this.id} stopped, but its key files on the device could not be removed: ${problem}.`, {
        ...context,
        hint: `Remove ${this.remoteDir} on the device by hand (the key is useless now that the share is gone).`,
      });
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** Writes the client key (from stdin) and known_hosts on the device; returns their directory. */
async function installKeys(deps: ShareDeps, id: string, privateKey: string, knownHostsLine: string): Promise<string> {
  const script = [
    'set -e',
    'umask 077',
    `d="$HOME/.cache/labwright/share-${id}"`,
    'mkdir -p "$d"',
    'chmod 700 "$d"',
    'cat > "$d/id_ed25519"',
    `printf '%s\\n' ${shellWord(knownHostsLine)} > "$d/known_hosts"`,
    'printf "%s\\n" "$d"',
  ].join('; ');
  let result;
  try {
    result = await deps.runner.run(script, { timeout: deps.commandTimeout, stdin: privateKey });
  } catch (error) {
    throw new LabwrightError(`could not place the share's key on the device: ${messageOf(error)}.`, { host: deps.host, protocol: 'share', cause: error });
  }
  const dir = result.stdout.trim().split('\n').pop() ?? '';
  if (result.exitCode !== 0 || !dir.startsWith('/')) {
    throw new LabwrightError(
      `could not place the share's key on the device (exit ${result.exitCode}): ${(result.stderr || result.stdout).trim() || 'no output'}.`,
      {
        host: deps.host,
        protocol: 'share',
        hint: 'The login user needs a writable $HOME on the device (the key goes to ~/.cache/labwright/).',
      },
    );
  }
  return dir;
}

/** Removes the key directory; resolves with a problem description, or undefined when it is gone. */
async function removeKeys(deps: ShareDeps, dir: string): Promise<string | undefined> {
  const quoted = shellWord(dir);
  try {
    const result = await deps.runner.run(`rm -f -- ${quoted}/id_ed25519 ${quoted}/known_hosts && { rmdir -- ${quoted} 2>/dev/null || [ ! -e ${quoted} ]; }`, {
      timeout: Math.min(deps.commandTimeout, 10_000),
    });
    if (result.exitCode === 0) return undefined;
    return `exit ${result.exitCode}: ${(result.stderr || result.stdout).trim()}`;
  } catch (error) {
    return messageOf(error);
  }
}
