/**
 * The lab configuration schema (zod). Input types are what `lab.config.ts` authors
 * write; output types are what the rest of labwright receives: defaults applied,
 * secrets resolved from the environment, patterns compiled.
 */
import { z } from 'zod';

/** Milliseconds, a non-negative integer. */
const ms = () => z.number().int().nonnegative();
const port = () => z.number().int().min(1).max(65535);

/** A pattern given as a RegExp or as the source of one. */
export const patternSchema = z.union([z.string(), z.instanceof(RegExp)]).transform((value, ctx) => {
  if (value instanceof RegExp) return value;
  try {
    return new RegExp(value);
  } catch (error) {
    ctx.issues.push({ code: 'custom', input: value, message: `not a valid regular expression (${(error as Error).message})` });
    return z.NEVER;
  }
});

/** A secret: a literal string, or `{ env: 'NAME' }` read from the environment when the lab is defined. */
export const secretSchema = z
  .union([z.string(), z.strictObject({ env: z.string().min(1) })])
  .transform((value, ctx) => {
    if (typeof value === 'string') return value;
    const resolved = process.env[value.env];
    if (resolved === undefined || resolved === '') {
      ctx.issues.push({
        code: 'custom',
        input: value,
        message: `environment variable ${value.env} is not set; export it before running the tests`,
      });
      return z.NEVER;
    }
    return resolved;
  });

/** What a keyboard-interactive prompt is answered with. */
const kbdAnswerSchema = z.union([
  z.literal('password'),
  z.literal('totp'),
  z.strictObject({ secret: secretSchema }),
]);

/** Answers one keyboard-interactive prompt (MFA): the first rule whose pattern matches answers. */
export const kbdRuleSchema = z.strictObject({
  /** Pattern matched against the server's prompt text. */
  prompt: patternSchema,
  /** `'password'` (the user's password), `'totp'` (a code from the user's TOTP secret) or `{ secret }`. */
  answer: kbdAnswerSchema,
});

export const hostKeyPolicySchema = z.enum(['strict', 'accept-new', 'off']);
export const authMethodSchema = z.enum(['publickey', 'agent', 'keyboard-interactive', 'password']);

/** Credentials of one user on a host. */
export const userSchema = z.strictObject({
  password: secretSchema.optional(),
  /** Path to a private key file (`~` expanded). */
  privateKey: z.string().min(1).optional(),
  /** Passphrase of `privateKey`. */
  passphrase: secretSchema.optional(),
  /** Use an ssh-agent: `true` for `$SSH_AUTH_SOCK`, or the socket path. */
  agent: z.union([z.boolean(), z.string().min(1)]).optional(),
  /** Base32 TOTP seed answering one-time-code prompts of keyboard-interactive MFA. */
  totp: secretSchema.optional(),
});

/** SSH connection options (see otto's SshOptions, AsyncSSH's connect options). */
export const sshOptionsSchema = z.strictObject({
  port: port().default(22),
  /** Bound on TCP connect plus handshake plus authentication. */
  connectTimeout: ms().default(15_000),
  /** Keepalive probe interval; 0 turns keepalives off. */
  keepaliveInterval: ms().default(5_000),
  /** Unanswered keepalives before the connection is declared dead. */
  keepaliveCountMax: z.number().int().min(1).default(3),
  /** `strict` (default): the key must be in known_hosts; `accept-new`: unknown keys are pinned, changed keys refused; `off`: no check. */
  hostKeyPolicy: hostKeyPolicySchema.default('strict'),
  /** known_hosts files to check against (`~` expanded). */
  knownHosts: z.array(z.string().min(1)).default(['~/.ssh/known_hosts']),
  /** File where `accept-new` pins new keys; defaults to the first `knownHosts` file. */
  pinFile: z.string().min(1).optional(),
  /** Authentication methods, tried in this order where credentials allow. */
  authMethods: z.array(authMethodSchema).min(1).default(['publickey', 'agent', 'keyboard-interactive', 'password']),
  /** Rules answering keyboard-interactive prompts; by default password prompts get the password and code prompts a TOTP code. */
  keyboardInteractive: z.array(kbdRuleSchema).optional(),
  /** Terminal type of the pty requested for shells. */
  termType: z.string().min(1).default('dumb'),
  cols: z.number().int().min(20).max(10_000).default(250),
  rows: z.number().int().min(5).max(10_000).default(50),
  /** Environment variables sent with each channel (the server's AcceptEnv decides). */
  env: z.record(z.string(), z.string()).default({}),
  /** The server's MaxSessions if known; probed once per connection otherwise. */
  maxSessions: z.number().int().min(1).max(1024).optional(),
  /** Connect attempts for transient errors (refused, timeout, reset); never for auth or host keys. */
  connectAttempts: z.number().int().min(1).max(20).default(3),
  /** Backoff before the second connect attempt; doubles up to `connectBackoffMax`. */
  connectBackoff: ms().default(500),
  connectBackoffMax: ms().default(5_000),
  /** How often a command is retried after the connection was lost under it. */
  commandRetries: z.number().int().min(0).max(10).default(3),
  /** Wrapper mode: every `exec` runs this remote program and passes the command on its stdin. */
  wrapper: z.string().min(1).optional(),
  /** ssh2 algorithm lists (kex, cipher, serverHostKey, hmac, compress). */
  algorithms: z.record(z.string(), z.array(z.string())).optional(),
});

/** Telnet options (see otto's TelnetOptions). */
export const telnetOptionsSchema = z.strictObject({
  port: port().default(23),
  connectTimeout: ms().default(10_000),
  loginPrompt: patternSchema.default(/(login|username|user name)\s*:\s*$/i),
  passwordPrompt: patternSchema.default(/password\s*:\s*$/i),
  /** Text the device prints when a login is refused. */
  loginFailed: patternSchema.default(/(login incorrect|authentication fail|login failed|access denied)/i),
  /** Bound on the whole login dialogue. */
  loginTimeout: ms().default(20_000),
  termType: z.string().min(1).default('dumb'),
  cols: z.number().int().min(20).max(10_000).default(250),
  rows: z.number().int().min(5).max(10_000).default(50),
  /** Logged-in sessions kept for concurrent `exec` on telnet-only hosts. */
  execPoolSize: z.number().int().min(1).max(32).default(3),
});

/** Shell session options, for every terminal protocol. */
export const shellOptionsSchema = z.strictObject({
  /** Program started instead of the login shell (SSH: run with a pty; local: spawned). */
  command: z.string().min(1).optional(),
  /** Commands run once when a session starts (after labwright's own setup). */
  init: z.array(z.string()).default([]),
  /** Longest line typed into the shell; longer or multi-line commands are sent in pieces. */
  maxLineLength: z.number().int().min(64).max(4000).default(512),
  /** Bound on opening a shell and getting its first marker back. */
  openTimeout: ms().default(20_000),
  /** How long each recovery step after a timeout waits for the shell to answer. */
  recoveryTimeout: ms().default(3_000),
});

export const verifySchema = z.enum(['size', 'sha256', 'none']);

export const sftpOptionsSchema = z.strictObject({
  /** Bytes per SFTP read/write request (OpenSSH accepts up to 255 KiB). */
  chunkSize: z.number().int().min(1024).max(4 * 1024 * 1024).default(255 * 1024),
  /** Requests in flight per file (32 × 255 KiB measured best against OpenSSH's sftp-server). */
  concurrency: z.number().int().min(1).max(1024).default(32),
  verify: verifySchema.default('size'),
  /** A transfer fails when nothing moved for this long (ms); a call's `timeout` wins. */
  idleTimeout: ms().default(60_000),
});

export const scpOptionsSchema = z.strictObject({
  /** Remote scp program. */
  command: z.string().min(1).default('scp'),
  verify: verifySchema.default('size'),
  /** A transfer fails when nothing moved for this long (ms); a call's `timeout` wins. */
  idleTimeout: ms().default(60_000),
});

export const ftpOptionsSchema = z.strictObject({
  port: port().default(21),
  /** `false`: plain FTP; `'explicit'`: AUTH TLS; `'implicit'`: TLS from the start. */
  secure: z.union([z.literal(false), z.literal('explicit'), z.literal('implicit')]).default(false),
  /** Accept self-signed certificates for FTPS. */
  allowUnauthorizedTls: z.boolean().default(false),
  /** Lab user whose credentials log in; defaults to the host's user. */
  user: z.string().min(1).optional(),
  connectTimeout: ms().default(10_000),
  /** Concurrent FTP control connections used for parallel transfers. */
  poolSize: z.number().int().min(1).max(16).default(2),
  verify: verifySchema.default('size'),
  /** A transfer fails when nothing moved for this long (ms); a call's `timeout` wins. */
  idleTimeout: ms().default(60_000),
});

export const ncOptionsSchema = z.strictObject({
  /** Remote netcat program. */
  command: z.string().min(1).default('nc'),
  /** Address the runner (or the hop) reaches the device's listener at, when it differs from `address` (NAT, a published SSH port). */
  address: z.string().min(1).optional(),
  /** Remote ports tried for the listener. */
  portRange: z.tuple([port(), port()]).default([40000, 40999]),
  /** Remote listeners are killed after this long whatever happens. */
  listenerLifetime: ms().default(120_000),
  /** Bound on waiting for the remote listener to accept. */
  readyTimeout: ms().default(10_000),
  verify: verifySchema.default('size'),
  /** A transfer fails when nothing moved for this long (ms); a call's `timeout` wins. */
  idleTimeout: ms().default(60_000),
});

/** A pattern telling a power state in a driver's answer (case-insensitive by default). */
const statePattern = (fallback: RegExp) => patternSchema.default(fallback);

/** An outlet of a PDU: a number or a name, passed to the driver's templates as `{outlet}`. */
const outletSchema = z.union([z.string().min(1), z.number().int().nonnegative()]).transform(String);

/** Fields every power driver has. */
const powerDriverFields = {
  /** Bound (ms) on one power action, waiting for the PDU's other actions included. */
  timeout: ms().default(30_000),
  /**
   * How long (ms) the outlet stays off when a cycle is made of `off` then `on` (drivers
   * without a cycle of their own). Default 2 000.
   */
  cycleDelay: ms().default(2_000),
};

/**
 * QEMU through QMP on a unix socket (`-qmp unix:<path>,server=on,wait=off`). QEMU has no
 * power switch on its monitor, so labwright maps one: `off` stops the virtual CPUs (the
 * board freezes and answers nothing), `on` resets the machine and runs it (a cold boot
 * from firmware), `cycle` is `system_reset` (and a run if it was off). See the README.
 */
export const qemuPowerSchema = z.strictObject({
  driver: z.literal('qemu'),
  /** Path of the QMP unix socket. QEMU serves one client per socket: give labwright its own `-qmp`. */
  socket: z.string().min(1),
  ...powerDriverFields,
  /** Bound (ms) on one power action, waiting for the monitor included. */
  timeout: ms().default(10_000),
});

/**
 * A program switching the outlet: a PDU's CLI, `ipmitool`, a relay script. Each command is
 * a `/bin/sh` command line; `{outlet}` and `{host}` are replaced by the outlet and the lab
 * host's name, shell-quoted. Exit status 0 is success.
 */
export const commandPowerSchema = z.strictObject({
  driver: z.literal('command'),
  /** Turns the outlet on. */
  on: z.string().min(1),
  /** Turns the outlet off. */
  off: z.string().min(1),
  /** Power-cycles the outlet; default: `off`, `cycleDelay`, then `on`. */
  cycle: z.string().min(1).optional(),
  /** Prints the outlet's state; its output is matched against `stateOn`/`stateOff`. Without it the state is `unknown`. */
  state: z.string().min(1).optional(),
  /** Output of `state` meaning on (default `/\bon\b/i`). */
  stateOn: statePattern(/\bon\b/i),
  /** Output of `state` meaning off (default `/\boff\b/i`). */
  stateOff: statePattern(/\boff\b/i),
  /** Lab host the program runs on (through its `exec`); default: the runner itself. */
  runOn: z.string().min(1).optional(),
  /** Environment of the commands; values from `env()` are secrets (masked everywhere). */
  env: z.record(z.string(), secretSchema).default({}),
  ...powerDriverFields,
});

/** One HTTP request of the HTTP power driver; `{outlet}` and `{host}` are filled in (URL-encoded in the URL). */
const httpRequestSchema = (method: string) =>
  z.union([
    z.string().min(1).transform((url) => ({ method, url, body: undefined, headers: {} as Record<string, string> })),
    z.strictObject({
      /** HTTP method. */
      method: z.string().min(1).default(method),
      /** Absolute, or relative to the driver's `baseUrl`. */
      url: z.string().min(1),
      /** Request body, sent as is (set a `Content-Type` header for JSON). */
      body: z.string().optional(),
      /** Headers of this request, added to the driver's; values from `env()` are secrets. */
      headers: z.record(z.string(), secretSchema).default({}),
    }),
  ]);

/** Credentials of the HTTP power driver: basic auth (`user`, `password`) or a bearer token. */
const httpAuthSchema = z
  .strictObject({
    /** User of basic auth. */
    user: z.string().min(1).optional(),
    /** Password of basic auth. */
    password: secretSchema.optional(),
    /** Token sent as `Authorization: Bearer <token>`. */
    bearer: secretSchema.optional(),
  })
  .refine((auth) => (auth.bearer !== undefined ? auth.user === undefined && auth.password === undefined : auth.user !== undefined && auth.password !== undefined), {
    message: 'give either user and password (basic auth) or bearer (a token)',
  });

/**
 * A REST PDU: one request per action (method, URL and body templates). A 2xx answer is
 * success. Secrets (auth, `env()` header values, a password in a URL) are masked in
 * every message, transcript and event.
 */
export const httpPowerSchema = z.strictObject({
  driver: z.literal('http'),
  /** Base of relative request URLs (`http://pdu1.lab/api`). */
  baseUrl: z.string().min(1).optional(),
  /** Turns the outlet on (a URL means POST to it). */
  on: httpRequestSchema('POST'),
  /** Turns the outlet off. */
  off: httpRequestSchema('POST'),
  /** Power-cycles the outlet; default: `off`, `cycleDelay`, then `on`. */
  cycle: httpRequestSchema('POST').optional(),
  /** Reads the outlet's state (a URL means GET); its body is matched against `stateOn`/`stateOff`. */
  state: httpRequestSchema('GET').optional(),
  /** Body of `state` meaning on (default `/\bon\b/i`). */
  stateOn: statePattern(/\bon\b/i),
  /** Body of `state` meaning off (default `/\boff\b/i`). */
  stateOff: statePattern(/\boff\b/i),
  /** Basic auth `{ user, password }` or `{ bearer }` token. */
  auth: httpAuthSchema.optional(),
  /** Headers sent with every request; values from `env()` are secrets. */
  headers: z.record(z.string(), secretSchema).default({}),
  ...powerDriverFields,
});

/** The power drivers by name, for validation with field hints. */
export const powerDriverSchemas = { qemu: qemuPowerSchema, command: commandPowerSchema, http: httpPowerSchema } as const;

/** A host's power: an outlet of a PDU named in `pdus`, or a driver of its own (any driver's fields plus `outlet`). */
export const powerRefSchema = z.strictObject({
  /** Name of a PDU in the lab's `pdus`. */
  pdu: z.string().min(1),
  /** The host's outlet on it (`{outlet}` in the driver's templates). */
  outlet: outletSchema.optional(),
});
export const outletFieldSchema = z.strictObject({ outlet: outletSchema.optional() });

/**
 * What a recovery function receives. The host layer fills in `host` (declaration merging)
 * with its RemoteHost type: the config layer sits below the host layer and cannot name it.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled in by src/host/remoteHost.ts
export interface RecoveryTypes {}
/** The host a recovery function is given (a RemoteHost). */
export type RecoveryHost = RecoveryTypes extends { host: infer H } ? H : unknown;
/** Brings a host that failed its health check back into a usable state. */
export type RecoverFunction = (host: RecoveryHost) => Promise<void>;

/** Reboots, waiting until a device is back, and recovery between tests. */
export const lifecycleOptionsSchema = z.strictObject({
  /** Command a soft reboot types into a shell of the device. */
  rebootCommand: z.string().min(1).default('reboot'),
  /** Bound (ms) on the device going down after the reboot command (its shell dropping). */
  downTimeout: ms().default(60_000),
  /** Bound (ms) on waiting until the device is back (`waitUntilUp()`, `reboot()`, recovery). */
  upTimeout: ms().default(300_000),
  /** Pause (ms) between two checks while waiting until the device is back. */
  pollInterval: z.number().int().min(50).default(1_000),
  /**
   * After a failed test, when the host does not answer its health check: `'reboot'` (a
   * soft reboot), `'power-cycle'` (a hard one through its power driver), a function of
   * yours, or `'none'` (default: leave it as it is).
   */
  recover: z
    .custom<'none' | 'reboot' | 'power-cycle' | RecoverFunction>(
      (value) => typeof value === 'function' || value === 'none' || value === 'reboot' || value === 'power-cycle',
      'expected "none", "reboot", "power-cycle" or a function',
    )
    .default('none'),
  /** Command whose exit status 0 means the host is healthy (run on its own channel). */
  healthCheck: z.string().min(1).default('true'),
  /** Bound (ms) on the health check. */
  healthTimeout: ms().default(10_000),
});

/**
 * Prompt mode: consoles that are not POSIX shells (U-Boot's `=>`, other boot loaders). A
 * command ends when the prompt comes back.
 */
export const promptOptionsSchema = z.strictObject({
  /** The prompt, matched at the end of the console's output. Default: U-Boot's `=> `. */
  pattern: patternSchema.default(/=> $/),
  /**
   * A command printing the previous command's exit status, typed on the same line after
   * each command (`cmd; echo <marker>$?`): U-Boot's hush shell has `$?`. `false`: the
   * console has none, and results say so (exit code null, never a made-up 0).
   */
  status: z.union([z.string().min(1), z.literal(false)]).default('echo $?'),
  /** Without a status command: how long (ms) the console must stay quiet after the prompt before the command counts as ended. */
  settle: ms().default(150),
  /** Typed to interrupt a command that timed out (repeated, up to 3 times). Default Ctrl+C. */
  interrupt: z.string().min(1).default('\x03'),
});

/** The boot loader's autoboot countdown and how to stop it. */
export const autobootOptionsSchema = z.strictObject({
  /** What the boot loader prints while it counts down. Default: U-Boot's and barebox's countdown lines. */
  pattern: patternSchema.default(/(Hit any key to stop autoboot|Press any key to stop autoboot|autoboot in \d+ seconds)/i),
  /** Typed when the countdown appears (repeated a few times, as boot loaders drain their input). Default a space. */
  key: z.string().min(1).default(' '),
  /** Bound (ms) on waiting for the countdown (power-on, firmware, memory tests). */
  timeout: ms().default(60_000),
});

/** A serial console of a host. */
export const consoleOptionsSchema = z
  .strictObject({
    /**
     * How the console is reached: `tcp` (raw TCP: ser2net raw, terminal servers in raw
     * mode, QEMU `-serial tcp:`), `telnet` (a terminal-server port; RFC 2217 line settings
     * where the server offers them) or `serial` (a device on the runner, via `serialport`).
     * `tcp` and `telnet` go through the host's hop like every other protocol.
     */
    transport: z.enum(['tcp', 'telnet', 'serial']),
    /** Terminal server address (tcp, telnet), as reached from the runner or the hop; default: the host's address. */
    address: z.string().min(1).optional(),
    /** Terminal server port (tcp, telnet; required there). */
    port: port().optional(),
    /** Serial device path (serial; required there), e.g. `/dev/ttyUSB0`. */
    path: z.string().min(1).optional(),
    /** Line speed in bits per second (serial; telnet through RFC 2217). */
    baudRate: z.number().int().positive().default(115_200),
    dataBits: z.union([z.literal(5), z.literal(6), z.literal(7), z.literal(8)]).default(8),
    parity: z.enum(['none', 'odd', 'even', 'mark', 'space']).default('none'),
    stopBits: z.union([z.literal(1), z.literal(1.5), z.literal(2)]).default(1),
    flowControl: z.enum(['none', 'software', 'hardware']).default('none'),
    /** telnet: ask the terminal server for the line settings above with RFC 2217 (when it offers the option). */
    rfc2217: z.boolean().default(true),
    /** Bound (ms) on opening the console connection or device. */
    connectTimeout: ms().default(10_000),
    /** Bound (ms) on waiting for the console while another call (or another process on this runner) holds it. */
    claimTimeout: ms().default(30_000),
    /** Typed to make a quiet console show its prompt (a getty prints `login:` again). Default a newline. */
    wake: z.string().default('\n'),
    /** What ends a typed line. Default LF (a tty in canonical mode, getty and U-Boot all take it). */
    newline: z.string().min(1).default('\n'),
    /** Shell mode: lab user logged in on the console; default the host's user. */
    user: z.string().min(1).optional(),
    loginPrompt: patternSchema.default(/(login|username|user name)\s*:\s*$/i),
    passwordPrompt: patternSchema.default(/password\s*:\s*$/i),
    loginFailed: patternSchema.default(/(login incorrect|authentication fail|login failed|access denied)/i),
    /** Bound (ms) on the console login. */
    loginTimeout: ms().default(20_000),
    /**
     * Shell mode: take the kernel's console messages (printk lines `[   12.345678] text`,
     * which the serial driver ends with CR LF, while the shell's own output ends lines with
     * LF once labwright set the terminal up) out of command output; they are shown apart
     * in the transcript and kept in the console log. Default true.
     */
    kernelMessages: z.boolean().default(true),
    /** Answer terminal queries programs send (cursor position `ESC[6n`, status `ESC[5n`), as a terminal would. */
    answerQueries: z.boolean().default(true),
    /** Attach the console log (`console: <host>`) to each test that used the host. */
    log: z.boolean().default(true),
    prompt: promptOptionsSchema.prefault({}),
    autoboot: autobootOptionsSchema.prefault({}),
  })
  .superRefine((value, ctx) => {
    if (value.transport === 'serial' && !value.path) ctx.issues.push({ code: 'custom', input: value, path: ['path'], message: 'a serial console needs the device path (path: "/dev/ttyUSB0")' });
    if (value.transport !== 'serial' && value.port === undefined) {
      ctx.issues.push({ code: 'custom', input: value, path: ['port'], message: `a ${value.transport} console needs the terminal server's port` });
    }
  });

const commonHostFields = {
  shell: shellOptionsSchema.prefault({}),
  /** Default per-command timeout on this host. */
  commandTimeout: ms().optional(),
  /** Free-form labels for selecting hosts. */
  tags: z.array(z.string()).default([]),
  /** Free-form facts about the device (board revision, serial console port, ...). */
  resources: z.record(z.string(), z.unknown()).default({}),
  description: z.string().optional(),
};

/** A remote host as written in `lab.config.ts`. */
export const hostSchema = z.strictObject({
  /** DNS name or IP address, as reached from the runner (or from the hop). Optional for a host with only a console. */
  address: z.string().min(1).optional(),
  /** Terminal protocol of the host's shells: `console` runs them on the serial console (shell mode). */
  term: z.enum(['ssh', 'telnet', 'console']).default('ssh'),
  /** Default file transfer method; `sftp` for SSH hosts and `ftp` for telnet hosts when not given. */
  transfer: z.enum(['sftp', 'scp', 'ftp', 'nc']).optional(),
  /** Name of the lab host to reach this one through (an SSH bastion). */
  hop: z.string().min(1).optional(),
  /** Credentials by user name. */
  users: z.record(z.string().min(1), userSchema).refine((users) => Object.keys(users).length > 0, {
    message: 'at least one user is required',
  }),
  /** Default user; the first of `users` when not given. */
  user: z.string().min(1).optional(),
  ssh: sshOptionsSchema.prefault({}),
  telnet: telnetOptionsSchema.prefault({}),
  sftp: sftpOptionsSchema.prefault({}),
  scp: scpOptionsSchema.prefault({}),
  ftp: ftpOptionsSchema.prefault({}),
  nc: ncOptionsSchema.prefault({}),
  /**
   * Power control: `{ pdu: 'pdu1', outlet: 3 }` (a PDU of the lab's `pdus`, shared with other
   * hosts and serialised with them) or a driver of the host's own (`{ driver: 'qemu', socket }`).
   */
  power: z.unknown().optional(),
  /** Reboot, wait-until-up and recovery options. */
  lifecycle: lifecycleOptionsSchema.prefault({}),
  /** The host's serial console, if it has one (`host.console`). */
  console: consoleOptionsSchema.optional(),
  ...commonHostFields,
});

/** Options of the always-present `local` host. */
export const localHostSchema = z.strictObject({ ...commonHostFields });

/** Defaults merged into every host's option groups (host values win). */
export const defaultsSchema = z.strictObject({
  ssh: sshOptionsSchema.partial().optional(),
  telnet: telnetOptionsSchema.partial().optional(),
  shell: shellOptionsSchema.partial().optional(),
  sftp: sftpOptionsSchema.partial().optional(),
  scp: scpOptionsSchema.partial().optional(),
  ftp: ftpOptionsSchema.partial().optional(),
  nc: ncOptionsSchema.partial().optional(),
  lifecycle: lifecycleOptionsSchema.partial().optional(),
  commandTimeout: ms().optional(),
});

/** Option groups that `defaults` can fill in. */
export const optionGroups = ['ssh', 'telnet', 'shell', 'sftp', 'scp', 'ftp', 'nc', 'lifecycle'] as const;

/** The top level of `lab.config.ts`. */
export const labSchema = z.strictObject({
  /** Remote hosts by name. `local` is reserved for the runner itself. */
  hosts: z.record(z.string(), z.unknown()).default({}),
  /** Option values shared by every host. */
  defaults: z.unknown().optional(),
  /** Options of the `local` host. */
  local: z.unknown().optional(),
  /** Power controllers (PDUs, QEMU monitors, relay scripts) by name, shared by the hosts whose `power` names them. */
  pdus: z.record(z.string(), z.unknown()).default({}),
  // --- leases (device sharing): validated by leasesSchema in ./leases.ts ---
  /** Where device leases are kept and how long they live (see LeasesInput in ./leases.ts). */
  leases: z.unknown().optional(),
  // --- end leases ---
});

export type SshOptions = z.output<typeof sshOptionsSchema>;
export type TelnetOptions = z.output<typeof telnetOptionsSchema>;
export type ShellOptions = z.output<typeof shellOptionsSchema>;
export type SftpOptions = z.output<typeof sftpOptionsSchema>;
export type ScpOptions = z.output<typeof scpOptionsSchema>;
export type FtpOptions = z.output<typeof ftpOptionsSchema>;
export type NcOptions = z.output<typeof ncOptionsSchema>;
export type LifecycleOptions = z.output<typeof lifecycleOptionsSchema>;
export type QemuPowerConfig = z.output<typeof qemuPowerSchema>;
export type CommandPowerConfig = z.output<typeof commandPowerSchema>;
export type HttpPowerConfig = z.output<typeof httpPowerSchema>;
/** A power controller after validation: one of the drivers. */
export type PduConfig = QemuPowerConfig | CommandPowerConfig | HttpPowerConfig;
/** One HTTP request of the HTTP driver after validation. */
export type HttpRequestConfig = HttpPowerConfig['on'];
/** A PDU as written in `lab.config.ts` (`pdus`, or a host's own `power` driver). */
export type PduInput = z.input<typeof qemuPowerSchema> | z.input<typeof commandPowerSchema> | z.input<typeof httpPowerSchema>;
/** A host's `power` as written: an outlet of a named PDU, or a driver of its own with an optional outlet. */
export type HostPowerInput = z.input<typeof powerRefSchema> | (PduInput & { outlet?: string | number });
export type ConsoleOptions = z.output<typeof consoleOptionsSchema>;
export type PromptOptions = z.output<typeof promptOptionsSchema>;
export type AutobootOptions = z.output<typeof autobootOptionsSchema>;
export type UserCredentials = z.output<typeof userSchema>;
export type KeyboardInteractiveRule = z.output<typeof kbdRuleSchema>;
export type HostKeyPolicy = z.output<typeof hostKeyPolicySchema>;
export type AuthMethod = z.output<typeof authMethodSchema>;
export type VerifyMode = z.output<typeof verifySchema>;
export type TransferMethod = 'sftp' | 'scp' | 'ftp' | 'nc';
export type TerminalProtocol = 'ssh' | 'telnet' | 'console';

/** A secret as written in the config: a literal or an environment variable reference. */
export type SecretInput = z.input<typeof secretSchema>;
/** A remote host as written in `lab.config.ts`. */
export type HostInput = Omit<z.input<typeof hostSchema>, 'power'> & {
  /** Power control: an outlet of a PDU of the lab (`{ pdu, outlet }`) or a driver of the host's own. */
  power?: HostPowerInput;
};
/** The `local` host's options as written in `lab.config.ts`. */
export type LocalHostInput = z.input<typeof localHostSchema>;
/** Lab-wide defaults as written in `lab.config.ts`. */
export type DefaultsInput = z.input<typeof defaultsSchema>;
