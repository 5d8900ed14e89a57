/**
 * A console reached through a hop: the board's console port is reachable from the
 * bastion container (on the Docker bridge's gateway address), and labwright reaches it
 * through the bastion's SSH connection (a direct-tcpip channel), like every protocol.
 */
import { labInput } from '../../fixtures/lab/labConfig.js';
import { startLab } from '../../fixtures/lab/startLab.js';
import { defineLab } from '../../src/config/defineLab.js';
import type { LabEvent } from '../../src/host/events.js';
import { Lab } from '../../src/host/lab.js';
import { boardHost, expect, QemuBoard, test } from '../helpers/qemuLab.js';

test('shell mode and the boot loader on a console through a bastion', async () => {
  test.setTimeout(300_000);
  await using containers = await startLab({ roles: ['bastion'] });
  const gateway = containers.networks.front!.gateway;
  await using board = await QemuBoard.create({ name: 'hopped', firmware: 'u-boot', consoleHost: gateway });
  const input = labInput(containers);
  const lab = new Lab(
    defineLab({
      ...input,
      hosts: { ...input.hosts, hopped: boardHost(board, { hop: 'bastion', console: { transport: 'tcp', address: gateway, port: board.consolePort } }) },
    }),
  );
  const events: LabEvent[] = [];
  lab.events.on((event) => events.push(event));
  try {
    const hopped = lab.remote('hopped');
    await hopped.console.connection.ensure();
    await board.powerOn();
    const bootloader = await hopped.console.interruptAutoboot({ timeout: 60_000 });
    const version = await bootloader.run('version');
    expect(version).toSucceed();
    expect(version.only.output).toMatch(/^U-Boot 2023\.01/);
    // U-Boot's default boot command finds boot.scr on the board's disk and boots Linux.
    await hopped.console.send('boot\n');
    await hopped.console.waitFor(/login: $/, { timeout: 120_000 });
    const r = await hopped.run(['uname -n', 'sh -c "exit 5"']);
    expect(r.results[0]).toHaveOutput('labwright-board');
    expect(r.results[1]).toHaveExitCode(5);
    const connected = events.find((event) => event.type === 'connection' && event.protocol === 'console' && event.event === 'connected');
    expect(connected && 'detail' in connected ? connected.detail : '').toBe(`tcp ${gateway}:${board.consolePort} via bastion`);
  } finally {
    await lab.close();
  }
});
