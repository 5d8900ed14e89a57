/**
 * The labwright command line: global options, the commands of commands/index.ts, and one
 * way to run an action (lab loaded on demand, connections closed at the end, errors printed
 * as their message, exit code returned).
 */
import { readFileSync } from 'node:fs';

import { Command, Option } from 'commander';

import { redact } from '../util/secrets.js';
import { commands } from './commands/index.js';
import { CliContext, type CliIo, describeFailure, type GlobalOptions, UsageError } from './context.js';

/** Runs a command's action with a context; resolves to the exit code. */
export type ActionRunner = (action: (context: CliContext) => Promise<number>) => Promise<void>;

/** What a command file exports: it adds its subcommand to the program. */
export interface CliCommand {
  register(program: Command, run: ActionRunner): void;
}

/** Exit code when labwright itself could not do what was asked (connection, config). */
export const EXIT_FAILURE = 1;
/** Exit code of a usage mistake (unknown host, bad option). */
export const EXIT_USAGE = 2;

/** The package's version (package.json is two folders up from src/cli and from dist/cli). */
function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Builds the program; `exit` receives the exit code of the command that ran. */
export function createProgram(io: CliIo, exit: (code: number) => void): Command {
  const program = new Command('labwright')
    .description('Check, use, power and trust the hosts of a labwright lab (lab.config.ts); show its leases.')
    .version(version(), '-V, --version')
    .addOption(new Option('-l, --lab <file>', 'lab file (default: $LABWRIGHT_LAB, else lab.config.ts)'))
    .addOption(new Option('--ssh-config [file]', 'also take hosts from an OpenSSH client config (default file: ~/.ssh/config)'))
    .showHelpAfterError()
    .configureOutput({ writeOut: (text) => io.stdout.write(text), writeErr: (text) => io.stderr.write(text) })
    .exitOverride();

  const run: ActionRunner = async (action) => {
    const context = new CliContext(program.opts<GlobalOptions>(), io);
    let code: number;
    try {
      code = await action(context);
    } catch (error) {
      io.stderr.write(`labwright: ${redact(describeFailure(error))}\n`);
      code = error instanceof UsageError ? EXIT_USAGE : EXIT_FAILURE;
    } finally {
      await context.close();
    }
    exit(code);
  };
  for (const command of commands) command.register(program, run);
  return program;
}

/** Parses `argv` (as process.argv) and runs the command; resolves to its exit code. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let exitCode = 0;
  const program = createProgram(io, (code) => (exitCode = code));
  try {
    await program.parseAsync([...argv]);
  } catch (error) {
    // commander's own exits (--help, --version, usage errors) arrive here through exitOverride.
    const code = (error as { exitCode?: number }).exitCode;
    return typeof code === 'number' ? (code === 0 ? 0 : EXIT_USAGE) : EXIT_FAILURE;
  }
  return exitCode;
}
