/**
 * `labwright leases`: who holds which device of the lab's lease store (machine, process,
 * test, since when, until when) and who waits for what, in serving order; `--json` for
 * scripts. Reads the store the lab config or LABWRIGHT_LEASES names.
 */
import { Option } from 'commander';

import { describeHolding, describeWaiter } from '../../lease/describe.js';
import type { CliCommand } from '../program.js';

export const leases: CliCommand = {
  register(program, runAction) {
    program
      .command('leases')
      .description("show who holds which device and who waits, from the lab's lease store")
      .addOption(new Option('--json', "print the store's snapshot as JSON"))
      .action((options: { json?: boolean }) =>
        runAction(async (context) => {
          const [lab] = await context.labList();
          const { listLeases } = await import('../../lease/list.js');
          const snapshot = await listLeases(lab!.config);
          const { stdout } = context.io;
          if (options.json) {
            stdout.write(`${JSON.stringify(snapshot, null, 2)}\n`);
            return 0;
          }
          stdout.write(`store: ${snapshot.store}\n`);
          stdout.write(snapshot.holders.length === 0 ? 'held: nothing\n' : `held (${snapshot.holders.length}):\n`);
          for (const holding of snapshot.holders) stdout.write(`  ${describeHolding(holding, snapshot.time)}\n`);
          stdout.write(snapshot.waiters.length === 0 ? 'waiting: nobody\n' : `waiting (${snapshot.waiters.length}), in serving order:\n`);
          for (const waiter of snapshot.waiters) stdout.write(`  ${waiter.position}. ${describeWaiter(waiter)}\n`);
          return 0;
        }),
      );
  },
};
