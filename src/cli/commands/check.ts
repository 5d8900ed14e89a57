/**
 * `labwright check [hosts...]`: a table per host (through its hops) saying whether it is
 * reachable, its host key known, authentication accepted, the shell answering, the
 * transfer method working, its MaxSessions and round-trip time. Exits 1 when a host fails,
 * naming the host and the reason.
 */
import { Option } from 'commander';

import { formatTable } from '../format.js';
import type { CheckStatus, HostReport } from '../hostChecks.js';
import type { CliCommand } from '../program.js';

const MARK: Record<CheckStatus, string> = { ok: '✔', failed: '✘', warning: '!', skipped: '–' };

/** One host's table as text. */
export function renderReport(report: HostReport): string {
  const rows = report.rows.map((row) => [MARK[row.status], row.name, row.detail]);
  return `${report.host} (${report.summary}): ${report.ok ? 'OK' : 'FAILED'}\n${formatTable(rows, '  ')}\n`;
}

export const check: CliCommand = {
  register(program, runAction) {
    program
      .command('check')
      .description('check hosts (default: every remote host): reachable, host key, auth, shell, transfer, MaxSessions, round trip')
      .argument('[hosts...]', 'lab hosts to check')
      .addOption(new Option('--json', 'print the results as JSON'))
      .addOption(new Option('--check-timeout <ms>', 'bound on each check').default(60_000).argParser(Number))
      .action((names: string[], options: { json?: boolean; checkTimeout: number }) =>
        runAction(async (context) => {
          const { checkHost } = await import('../hostChecks.js');
          const hosts = names.length > 0 ? names : await context.remoteHostNames();
          if (hosts.length === 0) {
            context.io.stderr.write('labwright: the lab has no remote hosts to check; name one, or add hosts to the lab file.\n');
            return 2;
          }
          // Unknown names are usage errors before anything connects.
          const labs = await Promise.all(hosts.map((name) => context.labOf(name)));
          const reports = await Promise.all(hosts.map((name, i) => checkHost(labs[i]!, name, options.checkTimeout)));
          const { stdout, stderr } = context.io;
          if (options.json) stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
          else stdout.write(reports.map(renderReport).join('\n'));
          const failed = reports.filter((report) => !report.ok);
          for (const report of failed) {
            const first = report.rows.find((row) => row.status === 'failed')!;
            stderr.write(`labwright: ${report.host} failed "${first.name}": ${first.detail}\n`);
          }
          return failed.length > 0 ? 1 : 0;
        }),
      );
  },
};
