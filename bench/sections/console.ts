/**
 * Console command latency on a real QEMU board (U-Boot, then Linux): prompt mode at
 * U-Boot's prompt and shell mode on the Linux console, over raw TCP directly and through
 * the bastion, beside SSH on the same board (labwright's SSH shell over its Dropbear).
 */
import { writeFileSync } from 'node:fs';

import { labInput } from '../../fixtures/lab/labConfig.js';
import type { Lab as StartedLab } from '../../fixtures/lab/startLab.js';
import { BOARD_PASSWORD, ensureQemuArtifacts, QemuBoard } from '../../fixtures/qemu/board.js';
import { defineLab } from '../../src/config/defineLab.js';
import { Lab } from '../../src/host/lab.js';
import { median, type Row, row, timeRuns } from '../stats.js';

export async function consoleSection(started: StartedLab): Promise<Row[]> {
  const gateway = started.networks.front!.gateway;
  // The console listens on the Docker bridge's gateway: the runner reaches it directly, the bastion too.
  await using board = await QemuBoard.create({ name: 'bench', firmware: 'u-boot', ssh: true, consoleHost: gateway });
  const knownHosts = `${board.stateDir}/known_hosts`;
  writeFileSync(knownHosts, `[127.0.0.1]:${board.sshPort} ${ensureQemuArtifacts().hostKey}\n`);
  const input = labInput(started);
  const boardHost = (hop?: string) => ({
    address: '127.0.0.1',
    ...(hop ? { hop } : {}),
    users: { root: { password: BOARD_PASSWORD } },
    ssh: { port: board.sshPort!, knownHosts: [knownHosts] },
    console: { transport: 'tcp' as const, address: gateway, port: board.consolePort },
  });
  const lab = new Lab(defineLab({ ...input, hosts: { ...input.hosts, qemu: boardHost(), 'qemu-hop': boardHost('bastion') } }));
  try {
    const direct = lab.remote('qemu');
    const hopped = lab.remote('qemu-hop');
    await direct.console.connection.ensure();
    await board.powerOn();
    await direct.console.interruptAutoboot();
    // QEMU's console serves one client at a time: each host lets go before the other uses it.
    const prompt = median(await timeRuns(100, () => direct.console.bootloader.run('echo x')));
    await direct.console.close();
    const promptHop = median(await timeRuns(100, () => hopped.console.bootloader.run('echo x')));
    await hopped.console.send('boot\n');
    await hopped.console.boot({ interrupt: false, ssh: false });
    const shellHop = median(await timeRuns(200, () => hopped.console.run('true')));
    await hopped.console.close();
    const shell = median(await timeRuns(200, () => direct.console.run('true')));
    const ssh = median(await timeRuns(200, () => direct.run('true')));
    console.log(
      `console: shell mode ${shell.toFixed(2)} ms (through a hop ${shellHop.toFixed(2)} ms), prompt mode ${prompt.toFixed(2)} ms (through a hop ${promptHop.toFixed(2)} ms), SSH shell on the same board ${ssh.toFixed(2)} ms (medians)`,
    );
    return [
      row('console', 'command in shell mode (Linux console, raw TCP)', 'ms', shell, ssh, 'labwright SSH shell, same board'),
      row('console', 'command in shell mode through 1 hop', 'ms', shellHop, shell, 'direct console'),
      row('console', 'command in prompt mode (U-Boot, raw TCP)', 'ms', prompt, ssh, 'labwright SSH shell, same board'),
      row('console', 'command in prompt mode through 1 hop', 'ms', promptHop, prompt, 'direct console'),
    ];
  } finally {
    await lab.close();
  }
}
