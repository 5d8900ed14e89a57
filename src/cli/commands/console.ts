/**
 * `labwright console HOST`: the host's serial console on this terminal (through its hops),
 * as `telnet` or `picocom` give it, while nobody else (another worker, another command) uses
 * it. On a terminal, Ctrl+] leaves; without one, what stdin carries is typed, and the command
 * ends `--linger` ms after stdin ends, so a script can type a few lines and read the answers.
 */
import { Option } from 'commander';

import type { RemoteHost } from '../../host/remoteHost.js';
import { UsageError } from '../context.js';
import type { CliCommand } from '../program.js';

/** Ctrl+], the key that leaves the console (as telnet's escape character). */
const ESCAPE = 0x1d;

export const consoleCommand: CliCommand = {
  register(program, runAction) {
    program
      .command('console')
      .description("attach to a host's serial console (Ctrl+] leaves); without a terminal, type stdin and print what the console answers")
      .argument('<host>', 'lab host with a console')
      .addOption(new Option('--linger <ms>', 'without a terminal: keep printing this long after stdin ends').default(2_000).argParser(Number))
      .addOption(new Option('--break', 'send a serial BREAK first (where the carrier has one)'))
      .action((hostName: string, options: { linger: number; break?: boolean }) =>
        runAction(async (context) => {
          if (!(options.linger >= 0)) throw new UsageError('--linger takes a number of milliseconds');
          const host = await context.host(hostName);
          if (host.kind !== 'remote' || !(host as RemoteHost).config.console) {
            throw new UsageError(`"${hostName}" has no console: add a console section to it in the lab config (console: { transport: "tcp", port: 7001 }).`);
          }
          const { stdin, stdout, stderr } = context.io;
          const tty = stdin.isTTY === true;
          const hostConsole = (host as RemoteHost).console;
          return hostConsole.interact(
            (bytes) => stdout.write(bytes),
            async (terminal) => {
              if (tty) stderr.write(`labwright: connected to the console of ${hostName} (${hostConsole.endpoint}); Ctrl+] leaves\r\n`);
              if (options.break && !(await terminal.sendBreak())) stderr.write(`labwright: ${hostName}: this console has no BREAK (${hostConsole.endpoint})\n`);
              let finish!: (code: number) => void;
              const finished = new Promise<number>((resolve) => (finish = resolve));
              const onInput = (data: Buffer) => {
                const escape = tty ? data.indexOf(ESCAPE) : -1;
                if (escape === -1) return terminal.write(data);
                if (escape > 0) terminal.write(data.subarray(0, escape));
                finish(0);
              };
              const onEnd = () => setTimeout(() => finish(0), options.linger).unref();
              void terminal.closed.then((reason) => {
                stderr.write(`\r\nlabwright: ${hostName} (console): the connection ended: ${reason.message}\r\n`);
                finish(1);
              });
              if (tty) stdin.setRawMode(true);
              stdin.on('data', onInput);
              stdin.once('end', onEnd);
              stdin.resume();
              try {
                return await finished;
              } finally {
                stdin.off('data', onInput);
                stdin.off('end', onEnd);
                if (tty) stdin.setRawMode(false);
                stdin.pause();
                if (tty) stderr.write('\r\n');
              }
            },
          );
        }),
      );
  },
};
