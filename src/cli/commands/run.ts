/**
 * `labwright run HOST -- CMD...`: one command on its own channel (exec), output streamed
 * as it comes, stderr kept apart, the remote exit status as labwright's own.
 */
import { Option } from 'commander';

import { UsageError } from '../context.js';
import type { CliCommand } from '../program.js';

/** Exit code of a command that timed out, as timeout(1) uses. */
export const EXIT_TIMEOUT = 124;
/** Exit code when the host could not be reached, as ssh uses. */
export const EXIT_UNREACHABLE = 255;

const SIGNALS: Record<string, number> = { HUP: 1, INT: 2, QUIT: 3, ABRT: 6, KILL: 9, SEGV: 11, PIPE: 13, ALRM: 14, TERM: 15 };

export const run: CliCommand = {
  register(program, runAction) {
    program
      .command('run')
      .description('run a command on a host and exit with its exit code (stdout and stderr kept apart)')
      .argument('<host>', 'lab host')
      .argument('<command...>', 'the command (put it after --); its words are joined with spaces, as ssh does')
      .addOption(new Option('-t, --timeout <ms>', "end the command after this long (default: the host's command timeout)").argParser(Number))
      .action((hostName: string, words: string[], options: { timeout?: number }) =>
        runAction(async (context) => {
          if (options.timeout !== undefined && !(options.timeout > 0)) throw new UsageError('--timeout takes a positive number of milliseconds');
          const host = await context.host(hostName);
          const lab = await context.labOf(hostName);
          const { stdout, stderr } = context.io;
          // Lines arrive as events while the command runs: print them as they come. Empty
          // lines wait for the next line (a protocol may add one at the end); the result's
          // output is what counts, so whatever the stream missed is printed at the end.
          let printed = '';
          let emptyLines = 0;
          const stop = lab.events.on((event) => {
            if (event.type !== 'command-output' || event.host !== host.name || event.session !== 'exec') return;
            if (event.line === '') return void emptyLines++;
            const text = `${'\n'.repeat(emptyLines)}${event.line}\n`;
            emptyLines = 0;
            printed += text;
            stdout.write(text);
          });
          let result;
          try {
            result = await host.exec(words.join(' '), options.timeout === undefined ? {} : { timeout: options.timeout });
          } catch (error) {
            stop();
            context.io.stderr.write(`labwright: ${(error as Error).message}\n`);
            return EXIT_UNREACHABLE;
          }
          stop();
          if (result.output.startsWith(printed)) stdout.write(result.output.slice(printed.length));
          if (result.stderr) stderr.write(result.stderr.endsWith('\n') ? result.stderr : `${result.stderr}\n`);
          if (result.timedOut) {
            stderr.write(`labwright: ${host.name}: ${result.error ?? 'timed out'}\n`);
            return EXIT_TIMEOUT;
          }
          if (result.signal) return 128 + (SIGNALS[result.signal] ?? 0);
          if (result.exitCode === null) {
            stderr.write(`labwright: ${host.name}: ${result.error ?? 'the command ended without an exit status'}\n`);
            return EXIT_UNREACHABLE;
          }
          return result.exitCode;
        }),
      );
  },
};
