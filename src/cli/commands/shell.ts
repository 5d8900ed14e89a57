/**
 * `labwright shell HOST`: an interactive terminal through the lab's hops, as `ssh HOST`
 * gives it: raw mode on the local terminal, window size changes passed on, the remote
 * exit status as labwright's own. Without a local terminal the bytes are piped as they are.
 */
import type { RemoteHost } from '../../host/remoteHost.js';
import { UsageError } from '../context.js';
import type { CliCommand } from '../program.js';

export const shell: CliCommand = {
  register(program, runAction) {
    program
      .command('shell')
      .description('open an interactive shell on a host (through its hops), as ssh does')
      .argument('<host>', 'lab host')
      .argument('[command...]', 'run this on the pty instead of the login shell')
      .action((hostName: string, words: string[]) =>
        runAction(async (context) => {
          const { stdin, stdout } = context.io;
          const host = await context.host(hostName);
          if (host.kind !== 'remote') throw new UsageError('"local" is this machine: open a shell here directly.');
          const { openTerminal } = await import('../../host/terminal.js');
          const terminal = await openTerminal(host as RemoteHost, {
            term: process.env.TERM || 'xterm-256color',
            cols: stdout.columns || 80,
            rows: stdout.rows || 24,
            ...(words.length > 0 ? { command: words.join(' ') } : {}),
          });
          const raw = stdin.isTTY === true;
          if (raw) stdin.setRawMode(true);
          const onInput = (data: Buffer) => terminal.write(data);
          const onResize = () => terminal.resize(stdout.columns || 80, stdout.rows || 24);
          const onEnd = () => terminal.end();
          stdin.on('data', onInput);
          stdin.once('end', onEnd);
          stdout.on('resize', onResize);
          terminal.onData((data) => stdout.write(data));
          stdin.resume();
          try {
            const exit = await terminal.exited;
            return exit.exitCode ?? (exit.signal ? 128 : 255);
          } finally {
            stdin.off('data', onInput);
            stdin.off('end', onEnd);
            stdout.off('resize', onResize);
            if (raw) stdin.setRawMode(false);
            stdin.pause();
          }
        }),
      );
  },
};
