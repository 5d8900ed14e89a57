/**
 * The boot-loader stage of a board, end to end on its console: stop the autoboot
 * countdown (or let it boot by itself), run boot-loader commands, boot the OS, log in on
 * the console (shell mode), and for boards with SSH wait until SSH answers on the same
 * board. Each stage is a step with its own bound; a failing stage says which and why.
 */
import { LabwrightError, messageOf } from '../util/errors.js';
import { quoteForMessage } from '../util/secrets.js';
import { formatDuration } from '../util/time.js';
import type { HostConsole } from './console.js';
import type { HostContext } from './events.js';
import type { CommandResult } from './results.js';

/** Options of `console.boot()`. */
export interface BootOptions {
  /**
   * Stop the autoboot countdown and work at the boot loader's prompt (default true).
   * `'prompt'`: the board already sits at the prompt (an earlier interrupt): check it
   * answers, then go on. `false`: let the boot loader boot by itself (its default boot
   * command), and only wait for the login.
   */
  interrupt?: boolean | 'prompt';
  /** Boot-loader commands run at the prompt, in order; each must succeed (or, without exit status, at least complete). */
  commands?: readonly string[];
  /** The command that boots the OS (it does not come back to the prompt), e.g. `boot` or `bootm ...`. Default `boot` when interrupted. */
  bootCommand?: string;
  /** Bound (ms) on the countdown appearing (default console.autoboot.timeout). */
  autobootTimeout?: number;
  /** Bound (ms) on each boot-loader command (default the host's command timeout). */
  commandTimeout?: number;
  /** Bound (ms) from the boot command to the console's login prompt (default 120000). */
  bootTimeout?: number;
  /** Log in on the console once the OS is up (default true). */
  login?: boolean;
  /** Then wait until SSH answers on the same board (default: for hosts whose `term` is `ssh`). Bound in ms: `{ timeout }` (default 60000). */
  ssh?: boolean | { timeout?: number };
}

/** What the boot stage did. */
export interface BootReport {
  /** Results of the boot-loader commands. */
  commands: CommandResult[];
  /** Milliseconds per stage: `autoboot` (or `prompt`), `commands`, `boot` (to the login prompt), `login`, `ssh`. */
  stages: Record<string, number>;
}

interface BootDeps {
  host: string;
  context: HostContext;
  sshReady: ((timeoutMs: number) => Promise<void>) | undefined;
  /** Wait for SSH unless told otherwise (hosts whose terminal is SSH). */
  sshByDefault: boolean;
  loginPrompt: RegExp;
}

export async function bootSequence(console: HostConsole, options: BootOptions, deps: BootDeps): Promise<BootReport> {
  const { host, context } = deps;
  const stages: Record<string, number> = {};
  const commands: CommandResult[] = [];
  const interrupt = options.interrupt ?? true;
  const bootTimeout = options.bootTimeout ?? 120_000;
  const timed = async <T>(stage: string, body: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    try {
      return await body();
    } catch (error) {
      if (error instanceof LabwrightError && error.message.includes('boot stage')) throw error;
      throw new LabwrightError(`the boot stage "${stage}" failed after ${formatDuration(Date.now() - started)}: ${messageOf(error)}`, {
        host,
        protocol: 'console',
        hint: 'See the console log attached to the test for what the board printed.',
        cause: error,
      });
    } finally {
      stages[stage] = Date.now() - started;
    }
  };

  await console.exclusive(async () => {
    if (interrupt) {
      const bootloader =
        interrupt === 'prompt'
          ? await timed('prompt', async () => {
              await console.bootloader.awaitPrompt();
              return console.bootloader;
            })
          : await timed('autoboot', () => console.interruptAutoboot({ timeout: options.autobootTimeout }));
      await timed('commands', async () => {
        for (const command of options.commands ?? []) {
          const result = (await bootloader.run(command, options.commandTimeout === undefined ? {} : { timeout: options.commandTimeout })).only;
          commands.push(result);
          if (result.status !== 'success' && result.status !== 'unknown') {
            throw new LabwrightError(
              `boot-loader command ${quoteForMessage(command, 200, 'start')} ${result.error ?? `exited with ${result.exitCode}`}; output: ${quoteForMessage(result.output, 300)}`,
              {
                host,
                protocol: 'console',
              },
            );
          }
        }
      });
      // The boot command does not come back to the prompt: type it and watch for the OS.
      console.skipOutput();
      await console.send(`${options.bootCommand ?? 'boot'}${console.options.newline}`);
    }
    if (options.login === false) return;
    await timed('boot', () => context.step(`${host}: wait for the console login`, () => console.waitFor(deps.loginPrompt, { timeout: bootTimeout })));
    await timed('login', () => context.step(`${host}: log in on the console`, async () => void (await console.shellSessionInstance.open())));
  });

  const ssh = options.ssh ?? deps.sshByDefault;
  if (ssh && options.login !== false) {
    if (!deps.sshReady) {
      throw new LabwrightError('boot({ ssh }) was asked to wait for SSH, but the host is a telnet host.', {
        host,
        protocol: 'console',
        hint: 'Leave ssh out.',
      });
    }
    const timeout = typeof ssh === 'object' && ssh.timeout !== undefined ? ssh.timeout : 60_000;
    await timed('ssh', () => context.step(`${host}: wait for SSH`, () => deps.sshReady!(timeout)));
  }
  return { commands, stages };
}
