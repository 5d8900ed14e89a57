/**
 * `labwright power HOST on|off|cycle|state`: the host's power driver (a PDU outlet, QEMU's
 * monitor, a relay script), as the lab config names it; `--wait` then waits until the host
 * is back (its console's login prompt and/or SSH and the shell answering), bounded.
 */
import { Option } from 'commander';

import type { RemoteHost } from '../../host/remoteHost.js';
import type { PowerAction } from '../../power/types.js';
import { formatDuration } from '../../util/time.js';
import { UsageError } from '../context.js';
import type { CliCommand } from '../program.js';

const ACTIONS: readonly PowerAction[] = ['on', 'off', 'cycle', 'state'];

export const power: CliCommand = {
  register(program, runAction) {
    program
      .command('power')
      .description("switch a host's power (on, off, cycle) or show its state, through its power driver")
      .argument('<host>', 'lab host with power control')
      .argument('<action>', ACTIONS.join(' | '))
      .addOption(new Option('-w, --wait', 'after on or cycle, wait until the host is back (console login prompt, SSH, shell)'))
      .addOption(new Option('-t, --timeout <ms>', "bound on --wait (default: the host's lifecycle.upTimeout)").argParser(Number))
      .action((hostName: string, action: string, options: { wait?: boolean; timeout?: number }) =>
        runAction(async (context) => {
          if (!ACTIONS.includes(action as PowerAction)) throw new UsageError(`unknown power action "${action}": use ${ACTIONS.join(', ')}.`);
          if (options.timeout !== undefined && !(options.timeout > 0)) throw new UsageError('--timeout takes a positive number of milliseconds');
          if (options.wait && (action === 'off' || action === 'state')) throw new UsageError(`--wait goes with on or cycle, not ${action}.`);
          const host = await context.host(hostName);
          if (host.kind !== 'remote') throw new UsageError('"local" is this machine: labwright has no power control over it.');
          const remote = host as RemoteHost;
          const started = Date.now();
          const state = await remote.power(action as PowerAction);
          context.io.stdout.write(`${hostName}: ${action === 'state' ? state : `${action} done, power ${state}`} (${formatDuration(Date.now() - started)})\n`);
          if (options.wait) {
            const waited = Date.now();
            await remote.waitUntilUp(options.timeout === undefined ? {} : { timeout: options.timeout });
            context.io.stdout.write(`${hostName}: up after ${formatDuration(Date.now() - waited)}\n`);
          }
          return 0;
        }),
      );
  },
};
