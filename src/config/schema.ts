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
export const secretSchema = z.union([z.string(), z.strictObject({ env: z.string().min(1) })]).transform((value, ctx) => {
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
const kbdAnswerSchema = z.union([z.literal('password'), z.literal('totp'), z.strictObject({ secret: secretSchema })]);

/** Fields of {@link kbdRuleSchema}; documented here so editors show them on hover. */
const kbdRuleShape = {
  /** Pattern (RegExp or its source) matched against the server's prompt text. */
  prompt: patternSchema,
  /** `'password'` (the user's password), `'totp'` (a code from the user's TOTP secret) or `{ secret }`. */
  answer: kbdAnswerSchema,
};
/** Answers one keyboard-interactive prompt (MFA): the first rule whose pattern matches answers. */
export const kbdRuleSchema: z.ZodObject<typeof kbdRuleShape, z.core.$strict> = z.strictObject(kbdRuleShape);

export const hostKeyPolicySchema = z.enum(['strict', 'accept-new', 'off']);
export const authMethodSchema = z.enum(['publickey', 'agent', 'keyboard-interactive', 'password']);

/** Fields of {@link userSchema}; documented here so editors show them on hover. */
const userShape = {
  /** Password (a literal or `env('NAME')`), for password and keyboard-interactive auth; masked everywhere. */
  password: secretSchema.optional(),
  /** Path to a private key file (`~` expanded); OpenSSH or PEM format. */
  privateKey: z.string().min(1).optional(),
  /** Passphrase of `privateKey` (a literal or `env('NAME')`). */
  passphrase: secretSchema.optional(),
  /** Use an ssh-agent: `true` for `$SSH_AUTH_SOCK`, or the socket path. */
  agent: z.union([z.boolean(), z.string().min(1)]).optional(),
  /** Base32 TOTP seed answering one-time-code prompts of keyboard-interactive MFA (RFC 6238: SHA1, 6 digits, 30 s). */
  totp: secretSchema.optional(),
};
/** Credentials of one user on a host. */
export const userSchema: z.ZodObject<typeof userShape, z.core.$strict> = z.strictObject(userShape);

/** Fields of {@link sshOptionsSchema}; documented here so editors show them on hover. */
const sshOptionsShape = {
  /** SSH port. Default 22. */
  port: port().default(22),
  /** Bound on TCP connect plus handshake plus authentication, in ms. Default 15000. */
  connectTimeout: ms().default(15_000),
  /** Keepalive probe interval in ms; 0 turns keepalives off. Default 5000. */
  keepaliveInterval: ms().default(5_000),
  /** Unanswered keepalives before the connection is declared dead. Default 3. */
  keepaliveCountMax: z.number().int().min(1).default(3),
  /** `strict`: the key must be in known_hosts; `accept-new`: unknown keys are pinned, changed keys refused; `off`: no check. Default `strict`. */
  hostKeyPolicy: hostKeyPolicySchema.default('strict'),
  /** known_hosts files to check against (`~` expanded). Default `['~/.ssh/known_hosts']`. */
  knownHosts: z.array(z.string().min(1)).default(['~/.ssh/known_hosts']),
  /** File where `accept-new` and `labwright trust` pin keys. Default: the first `knownHosts` file. */
  pinFile: z.string().min(1).optional(),
  /** Authentication methods, tried in this order where credentials allow. Default `['publickey', 'agent', 'keyboard-interactive', 'password']`. */
  authMethods: z.array(authMethodSchema).min(1).default(['publickey', 'agent', 'keyboard-interactive', 'password']),
  /** Rules answering keyboard-interactive prompts. Default: password prompts get the password, code prompts a TOTP code. */
  keyboardInteractive: z.array(kbdRuleSchema).optional(),
  /** Terminal type of the pty requested for shells. Default `dumb`. */
  termType: z.string().min(1).default('dumb'),
  /** Columns of the shells' pty, in characters. Default 250. */
  cols: z.number().int().min(20).max(10_000).default(250),
  /** Rows of the shells' pty, in lines. Default 50. */
  rows: z.number().int().min(5).max(10_000).default(50),
  /** Environment variables sent with each channel (the server's AcceptEnv decides). Default none. */
  env: z.record(z.string(), z.string()).default({}),
  /** The server's MaxSessions (session channels per connection), if known. Default: probed once per connection. */
  maxSessions: z.number().int().min(1).max(1024).optional(),
  /** Connect attempts for transient errors (refused, timeout, reset); never for auth or host keys. Default 3. */
  connectAttempts: z.number().int().min(1).max(20).default(3),
  /** Backoff before the second connect attempt in ms; doubles up to `connectBackoffMax`. Default 500. */
  connectBackoff: ms().default(500),
  /** Longest backoff between connect attempts, in ms. Default 5000. */
  connectBackoffMax: ms().default(5_000),
  /** How often a command is retried after the connection was lost under it. Default 3. */
  commandRetries: z.number().int().min(0).max(10).default(3),
  /** Wrapper mode: every `exec` runs this remote program and passes the command on its stdin. Default none. */
  wrapper: z.string().min(1).optional(),
  /** ssh2 algorithm lists (kex, cipher, serverHostKey, hmac, compress). Default: ssh2's. */
  algorithms: z.record(z.string(), z.array(z.string())).optional(),
};
/** SSH connection options. */
export const sshOptionsSchema: z.ZodObject<typeof sshOptionsShape, z.core.$strict> = z.strictObject(sshOptionsShape);

/** Fields of {@link telnetOptionsSchema}; documented here so editors show them on hover. */
const telnetOptionsShape = {
  /** Telnet port. Default 23. */
  port: port().default(23),
  /** Bound on the TCP connect, in ms. Default 10000. */
  connectTimeout: ms().default(10_000),
  /** Pattern of the login prompt. Default `/(login|username|user name)\s*:\s*$/i`. */
  loginPrompt: patternSchema.default(/(login|username|user name)\s*:\s*$/i),
  /** Pattern of the password prompt. Default `/password\s*:\s*$/i`. */
  passwordPrompt: patternSchema.default(/password\s*:\s*$/i),
  /** Text the device prints when a login is refused. Default `/(login incorrect|authentication fail|login failed|access denied)/i`. */
  loginFailed: patternSchema.default(/(login incorrect|authentication fail|login failed|access denied)/i),
  /** Bound on the whole login dialogue, in ms. Default 20000. */
  loginTimeout: ms().default(20_000),
  /** Terminal type announced (TTYPE). Default `dumb`. */
  termType: z.string().min(1).default('dumb'),
  /** Terminal columns announced (NAWS), in characters. Default 250. */
  cols: z.number().int().min(20).max(10_000).default(250),
  /** Terminal rows announced (NAWS), in lines. Default 50. */
  rows: z.number().int().min(5).max(10_000).default(50),
  /** Logged-in sessions kept for concurrent `exec` on telnet-only hosts. Default 3. */
  execPoolSize: z.number().int().min(1).max(32).default(3),
};
/** Telnet options. */
export const telnetOptionsSchema: z.ZodObject<typeof telnetOptionsShape, z.core.$strict> = z.strictObject(telnetOptionsShape);

/** Fields of {@link shellOptionsSchema}; documented here so editors show them on hover. */
const shellOptionsShape = {
  /** Program started instead of the login shell (SSH: run with a pty; local: spawned). Default: the login shell. */
  command: z.string().min(1).optional(),
  /** Commands run once when a session starts (after labwright's own setup); a failing one is an error. Default none. */
  init: z.array(z.string()).default([]),
  /** Longest line typed into the shell, in characters; longer or multi-line commands are sent in pieces. Default 512. */
  maxLineLength: z.number().int().min(64).max(4000).default(512),
  /** Bound on opening a shell and getting its first marker back, in ms. Default 20000. */
  openTimeout: ms().default(20_000),
  /** How long each recovery step after a timeout waits for the shell to answer, in ms. Default 3000. */
  recoveryTimeout: ms().default(3_000),
};
/** Shell session options, for every terminal protocol. */
export const shellOptionsSchema: z.ZodObject<typeof shellOptionsShape, z.core.$strict> = z.strictObject(shellOptionsShape);

export const verifySchema = z.enum(['size', 'sha256', 'none']);

/** Fields of {@link sftpOptionsSchema}; documented here so editors show them on hover. */
const sftpOptionsShape = {
  /** Bytes per SFTP read/write request (OpenSSH accepts up to 255 KiB). Default 261120 (255 KiB). */
  chunkSize: z
    .number()
    .int()
    .min(1024)
    .max(4 * 1024 * 1024)
    .default(255 * 1024),
  /** Requests in flight per file (32 × 255 KiB measured best against OpenSSH's sftp-server). Default 32. */
  concurrency: z.number().int().min(1).max(1024).default(32),
  /** Verification after a transfer: `size`, `sha256` (hashes both sides) or `none`. Default `size`. */
  verify: verifySchema.default('size'),
  /** A transfer fails when nothing moved for this long, in ms; a call's `timeout` wins. Default 60000. */
  idleTimeout: ms().default(60_000),
};
export const sftpOptionsSchema: z.ZodObject<typeof sftpOptionsShape, z.core.$strict> = z.strictObject(sftpOptionsShape);

/** Fields of {@link scpOptionsSchema}; documented here so editors show them on hover. */
const scpOptionsShape = {
  /** Remote scp program. Default `scp`. */
  command: z.string().min(1).default('scp'),
  /** Verification after a transfer: `size`, `sha256` or `none`. Default `size`. */
  verify: verifySchema.default('size'),
  /** A transfer fails when nothing moved for this long, in ms; a call's `timeout` wins. Default 60000. */
  idleTimeout: ms().default(60_000),
};
export const scpOptionsSchema: z.ZodObject<typeof scpOptionsShape, z.core.$strict> = z.strictObject(scpOptionsShape);

/** Fields of {@link ftpOptionsSchema}; documented here so editors show them on hover. */
const ftpOptionsShape = {
  /** FTP control port. Default 21. */
  port: port().default(21),
  /** `false`: plain FTP; `'explicit'`: AUTH TLS; `'implicit'`: TLS from the start. Default `false`. */
  secure: z.union([z.literal(false), z.literal('explicit'), z.literal('implicit')]).default(false),
  /** Accept self-signed certificates for FTPS. Default `false`. */
  allowUnauthorizedTls: z.boolean().default(false),
  /** Lab user whose credentials log in. Default: the host's user. */
  user: z.string().min(1).optional(),
  /** Bound on connecting and logging in, in ms. Default 10000. */
  connectTimeout: ms().default(10_000),
  /** Concurrent FTP control connections used for parallel transfers. Default 2. */
  poolSize: z.number().int().min(1).max(16).default(2),
  /** Verification after a transfer: `size`, `sha256` (needs a remote shell) or `none`. Default `size`. */
  verify: verifySchema.default('size'),
  /** A transfer fails when nothing moved for this long, in ms; a call's `timeout` wins. Default 60000. */
  idleTimeout: ms().default(60_000),
};
export const ftpOptionsSchema: z.ZodObject<typeof ftpOptionsShape, z.core.$strict> = z.strictObject(ftpOptionsShape);

/** Fields of {@link ncOptionsSchema}; documented here so editors show them on hover. */
const ncOptionsShape = {
  /** Remote netcat program. Default `nc`. */
  command: z.string().min(1).default('nc'),
  /** Address the runner (or the hop) reaches the device's listener at, when it differs from `address` (NAT, a published SSH port). Default: `address`. */
  address: z.string().min(1).optional(),
  /** Remote ports tried for the listener, inclusive. Default `[40000, 40999]`. */
  portRange: z.tuple([port(), port()]).default([40000, 40999]),
  /** Remote listeners are killed after this long whatever happens, in ms. Default 120000. */
  listenerLifetime: ms().default(120_000),
  /** Bound on waiting for the remote listener to accept, in ms. Default 10000. */
  readyTimeout: ms().default(10_000),
  /** Verification after a transfer: `size`, `sha256` or `none`. Default `size`. */
  verify: verifySchema.default('size'),
  /** A transfer fails when nothing moved for this long, in ms; a call's `timeout` wins. Default 60000. */
  idleTimeout: ms().default(60_000),
};
export const ncOptionsSchema: z.ZodObject<typeof ncOptionsShape, z.core.$strict> = z.strictObject(ncOptionsShape);

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
    z
      .string()
      .min(1)
      .transform((url) => ({ method, url, body: undefined, headers: {} as Record<string, string> })),
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
  .refine(
    (auth) => (auth.bearer !== undefined ? auth.user === undefined && auth.password === undefined : auth.user !== undefined && auth.password !== undefined),
    {
      message: 'give either user and password (basic auth) or bearer (a token)',
    },
  );

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

/** Fields of {@link lifecycleOptionsSchema}; documented here so editors show them on hover. */
const lifecycleOptionsShape = {
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
};
/** Reboots, waiting until a device is back, and recovery between tests. */
export const lifecycleOptionsSchema: z.ZodObject<typeof lifecycleOptionsShape, z.core.$strict> = z.strictObject(lifecycleOptionsShape);

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
    if (value.transport === 'serial' && !value.path)
      ctx.issues.push({ code: 'custom', input: value, path: ['path'], message: 'a serial console needs the device path (path: "/dev/ttyUSB0")' });
    if (value.transport !== 'serial' && value.port === undefined) {
      ctx.issues.push({ code: 'custom', input: value, path: ['port'], message: `a ${value.transport} console needs the terminal server's port` });
    }
  });
// --- logs collected on failure (cli branch) ---
/** Fields of {@link logsOptionsSchema}; documented here so editors show them on hover. */
const logsOptionsShape = {
  /** Commands whose output is collected, e.g. `dmesg`, `journalctl -b --no-pager`. Default none. */
  commands: z.array(z.string().min(1)).default([]),
  /** Files whose end is collected, e.g. `/var/log/messages`, an application log. Default none. */
  files: z.array(z.string().min(1)).default([]),
  /** Bound on each command or file, in ms. Default 10000. */
  timeout: ms().default(10_000),
  /** Bytes kept of each command's output or file (the end). Default 262144 (256 KiB). */
  maxBytes: z
    .number()
    .int()
    .min(1024)
    .default(256 * 1024),
};
/**
 * What to collect from a host when a test that used it fails: command output and the end
 * of files, attached to the report as `logs: <host>` (secrets masked). Each item is bounded
 * by `timeout`; collecting never fails the test a second time.
 */
export const logsOptionsSchema: z.ZodObject<typeof logsOptionsShape, z.core.$strict> = z.strictObject(logsOptionsShape);
// --- end logs collected on failure ---

/** Fields of every host, `local` included; documented here so editors show them on hover. */
const commonHostFields = {
  /** Logs collected when a test that used this host fails: `commands`, `files`, `timeout` (ms), `maxBytes`. Default: nothing collected. */
  logs: logsOptionsSchema.prefault({}),
  /** Shell session options: `command`, `init`, `maxLineLength`, `openTimeout`, `recoveryTimeout`. */
  shell: shellOptionsSchema.prefault({}),
  /** Default per-command timeout on this host, in ms. Default: the `commandTimeout` option fixture, else `defaults.commandTimeout`, else 30000. */
  commandTimeout: ms().optional(),
  /** Free-form labels for selecting hosts. Default none. */
  tags: z.array(z.string()).default([]),
  /** Free-form facts about the device (board revision, serial console port, ...). Default none. */
  resources: z.record(z.string(), z.unknown()).default({}),
  /** What the host is, for people reading the lab. */
  description: z.string().optional(),
};

/** Fields of {@link hostSchema} besides the common ones; documented here so editors show them on hover. */
const hostShape = {
  /** DNS name or IP address, as reached from the runner (or from the hop). Optional for a host with only a console. */
  address: z.string().min(1).optional(),
  /** Terminal protocol of the host's shells: `ssh`, `telnet`, or `console` (shells on the serial console, shell mode). Default `ssh`. */
  term: z.enum(['ssh', 'telnet', 'console']).default('ssh'),
  /** Default file transfer method: `sftp`, `scp`, `ftp` or `nc`. Default `sftp` for SSH hosts, `ftp` for telnet hosts. */
  transfer: z.enum(['sftp', 'scp', 'ftp', 'nc']).optional(),
  /** Name of the lab host to reach this one through (an SSH bastion; chains allowed). Default: direct. */
  hop: z.string().min(1).optional(),
  /** Credentials by user name (at least one): `password`, `privateKey`, `passphrase`, `agent`, `totp`. */
  users: z.record(z.string().min(1), userSchema).refine((users) => Object.keys(users).length > 0, {
    message: 'at least one user is required',
  }),
  /** Default user; the first of `users` when not given. */
  user: z.string().min(1).optional(),
  /** SSH options: `port` (22), `connectTimeout` (15000 ms), `hostKeyPolicy` (`strict`), `knownHosts`, keepalives, auth, pty size, MaxSessions, retries. */
  ssh: sshOptionsSchema.prefault({}),
  /** Telnet options: `port` (23), prompts, `loginTimeout` (20000 ms), terminal, `execPoolSize` (3). */
  telnet: telnetOptionsSchema.prefault({}),
  /** SFTP transfers: `chunkSize` (255 KiB), `concurrency` (32), `verify` (`size`). */
  sftp: sftpOptionsSchema.prefault({}),
  /** SCP transfers: `command` (`scp`), `verify` (`size`). */
  scp: scpOptionsSchema.prefault({}),
  /** FTP transfers: `port` (21), `secure` (false), `poolSize` (2), `verify` (`size`). */
  ftp: ftpOptionsSchema.prefault({}),
  /** netcat transfers: `command` (`nc`), `portRange` ([40000, 40999]), `listenerLifetime` (120000 ms), `verify` (`size`). */
  nc: ncOptionsSchema.prefault({}),
  /**
   * Power control: `{ pdu: 'pdu1', outlet: 3 }` (a PDU of the lab's `pdus`, shared with other
   * hosts and serialised with them) or a driver of the host's own (`{ driver: 'qemu', socket }`).
   */
  power: z.unknown().optional(),
  /** Reboot, wait-until-up and recovery options. */
  lifecycle: lifecycleOptionsSchema.prefault({}),
  /** The host's serial console, if it has one (`host.console`): `transport` (`tcp`, `telnet`, `serial`), address/port or path, line settings, prompt mode, autoboot. */
  console: consoleOptionsSchema.optional(),
};
/** A remote host as written in `lab.config.ts`. */
export const hostSchema: z.ZodObject<typeof hostShape & typeof commonHostFields, z.core.$strict> = z.strictObject({ ...hostShape, ...commonHostFields });

/** Options of the always-present `local` host. */
export const localHostSchema: z.ZodObject<typeof commonHostFields, z.core.$strict> = z.strictObject({ ...commonHostFields });

/** An option group with every field optional, keeping the fields' documentation for editors. */
type OptionalGroup<Shape extends z.core.$ZodLooseShape> = z.ZodOptional<z.ZodObject<{ [K in keyof Shape]: z.ZodOptional<Shape[K]> }, z.core.$strict>>;

/** Fields of {@link defaultsSchema}: each group's fields as in a host, all optional. */
const defaultsShape: {
  ssh: OptionalGroup<typeof sshOptionsShape>;
  telnet: OptionalGroup<typeof telnetOptionsShape>;
  shell: OptionalGroup<typeof shellOptionsShape>;
  sftp: OptionalGroup<typeof sftpOptionsShape>;
  scp: OptionalGroup<typeof scpOptionsShape>;
  ftp: OptionalGroup<typeof ftpOptionsShape>;
  nc: OptionalGroup<typeof ncOptionsShape>;
  logs: OptionalGroup<typeof logsOptionsShape>;
  lifecycle: OptionalGroup<typeof lifecycleOptionsShape>;
  /** Lab-wide default per-command timeout, in ms (below the host's own and the `commandTimeout` option fixture). Default 30000. */
  commandTimeout: z.ZodOptional<z.ZodNumber>;
} = {
  ssh: sshOptionsSchema.partial().optional(),
  telnet: telnetOptionsSchema.partial().optional(),
  shell: shellOptionsSchema.partial().optional(),
  sftp: sftpOptionsSchema.partial().optional(),
  scp: scpOptionsSchema.partial().optional(),
  ftp: ftpOptionsSchema.partial().optional(),
  nc: ncOptionsSchema.partial().optional(),
  logs: logsOptionsSchema.partial().optional(),
  lifecycle: lifecycleOptionsSchema.partial().optional(),
  commandTimeout: ms().optional(),
};
/** Defaults merged into every host's option groups (host values win). */
export const defaultsSchema: z.ZodObject<typeof defaultsShape, z.core.$strict> = z.strictObject(defaultsShape);

/** Option groups that `defaults` can fill in. */
export const optionGroups = ['ssh', 'telnet', 'shell', 'sftp', 'scp', 'ftp', 'nc', 'logs', 'lifecycle'] as const;

// --- OpenSSH client config import (cli branch) ---
/** `sshConfig`: `true` for `~/.ssh/config`, a file, or `{ file, hosts }` (see src/config/sshConfig.ts). */
export const sshConfigSchema = z.union([
  z.literal(true),
  z.string().min(1),
  z.strictObject({ file: z.string().min(1).optional(), hosts: z.array(z.string().min(1)).optional() }),
]);
// --- end OpenSSH client config import ---

/** The top level of `lab.config.ts`. */
export const labSchema = z.strictObject({
  /** Hosts from an OpenSSH client config; the lab's own host entries win. */
  sshConfig: sshConfigSchema.optional(),
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
export type LogsOptions = z.output<typeof logsOptionsSchema>;
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
