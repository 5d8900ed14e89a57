/**
 * `labwright trust HOST`: shows the host key of a host (and of each hop before it, which
 * must be trusted first to reach it) with its fingerprint, and pins it to the host's
 * known_hosts file (`ssh.pinFile`, else the first of `ssh.knownHosts`), creating `~/.ssh`
 * with mode 0700 and the file with 0600. A key that differs from a known one is refused.
 */
import { Option } from 'commander';

import { ConnectionError } from '../../util/errors.js';
import { UsageError } from '../context.js';
import type { CliCommand } from '../program.js';

export const trust: CliCommand = {
  register(program, runAction) {
    program
      .command('trust')
      .description('show the host key fingerprint of a host (and its hops) and pin it to its known_hosts file')
      .argument('<host>', 'lab host')
      .addOption(new Option('--fingerprint <sha256>', 'pin only if the key has this fingerprint (SHA256:..., as ssh-keygen -lf prints it)'))
      .action((hostName: string, options: { fingerprint?: string }) =>
        runAction(async (context) => {
          const lab = await context.labOf(hostName);
          if (hostName === 'local') throw new UsageError('"local" is this machine: it has no host key to trust.');
          const [{ hopChain }, { scanHostKey }, { knownHostName }, { hostKeyStanding, pinHostKey, pinFileOf }] = await Promise.all([
            import('../../config/hops.js'),
            import('../../transport/hostKeyScan.js'),
            import('../../transport/knownHosts.js'),
            import('../../transport/hostKeys.js'),
          ]);
          const { stdout } = context.io;
          const chain = [...hopChain(lab.config.hosts, hostName), hostName];
          for (const name of chain) {
            const config = lab.config.hosts[name]!;
            if (config.term !== 'ssh') {
              stdout.write(`${name}: its shells use ${config.term}, which has no host key; nothing to pin.\n`);
              continue;
            }
            const { address } = config;
            const { port, connectTimeout, algorithms, knownHosts: files, pinFile } = config.ssh;
            const key = await scanHostKey({ host: name, address, port, timeoutMs: connectTimeout, algorithms }, lab.remote(name).path);
            const seen = `${knownHostName(address, port)}${name === hostName && chain.length > 1 ? ` via ${chain.slice(0, -1).join(' → ')}` : ''}`;
            // The pin file counts whatever the policy: it is where this command writes.
            const check = { host: name, address, port, policy: 'accept-new' as const, knownHosts: files, pinFile: pinFileOf({ pinFile, knownHosts: files }) };
            const { verdict, presented } = await hostKeyStanding(check, key);
            const fingerprint = presented.split(' ')[1]!;
            stdout.write(`${name}: ${seen} presents ${presented}\n`);
            if (verdict.kind === 'match') {
              stdout.write(`${name}: already trusted (${verdict.entry.file}:${verdict.entry.line})\n`);
              continue;
            }
            const where = { host: name, protocol: 'ssh' as const };
            if (verdict.kind === 'revoked') {
              throw new ConnectionError('host-key', `this key is marked @revoked in ${verdict.entry.file}:${verdict.entry.line}; it is not pinned.`, {
                ...where,
                hint: 'Re-key the device.',
              });
            }
            if (name === hostName && options.fingerprint !== undefined && options.fingerprint !== fingerprint) {
              throw new ConnectionError('host-key', `the key's fingerprint is ${fingerprint}, not ${options.fingerprint}; it is not pinned.`, {
                ...where,
                hint: 'Someone may be intercepting the connection, or the fingerprint given is of another key type (compare ssh-keygen -lf on the device).',
              });
            }
            const file = await pinHostKey(check, key);
            stdout.write(`${name}: pinned to ${file}\n`);
          }
          return 0;
        }),
      );
  },
};
