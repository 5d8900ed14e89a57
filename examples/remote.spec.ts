/** Things only remote devices do: sudo with a secret password, a REPL, port forwarding. */
import net from 'node:net';

import { expect, secret, test } from 'labwright';

test.beforeEach(async ({ dut }) => {
  test.skip(dut.kind === 'local', 'needs a remote device');
});

test('sudo asks for the password; it is answered and masked in the transcript', async ({ dut }) => {
  const r = await dut.run('sudo -k; sudo -p "[sudo] password: " id -un', {
    expects: [[/\[sudo\] password: $/, secret(process.env.LAB_PASSWORD!)]],
  });
  expect(r).toSucceed();
  expect(r.only.output.trim().split('\n').pop()).toBe('root');
});

test('a python REPL is driven with send and expect', async ({ dut }) => {
  // Embedded boards often have no Python: ask the device what it has.
  test.skip((await dut.exec('command -v python3')).exitCode !== 0, 'no python3 on this device');
  await dut.send('python3 -q\n');
  await dut.expect(/>>> $/);
  await dut.send('sum(range(10))\n');
  expect((await dut.expect(/(\d+)\n>>> $/)).match[1]).toBe('45');
  await dut.send('exit()\n');
  expect(await dut.run('echo back')).toHaveOutput('back');
});

test('a local port forward reaches a service on the device', async ({ remote }) => {
  const board = await remote();
  test.skip(board.config.term !== 'ssh', 'port forwarding needs SSH');
  // The device's FTP server, as seen from the device itself.
  const forward = await board.forwardLocal('127.0.0.1', 21);
  const banner = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(forward.port, '127.0.0.1');
    socket.once('data', (data) => {
      resolve(data.toString());
      socket.destroy();
    });
    socket.once('error', reject);
  });
  // A 220 reply, possibly multi-line ("220-" continues it, as pure-ftpd does).
  expect(banner).toMatch(/^220[ -]/);
  await forward.close();
});

test('devices are described in lab.config.ts and reached the way it says', async ({ remote }) => {
  const board = await remote();
  const { config } = board;
  const r = await board.run('hostname');
  expect(r).toSucceed();
  test.info().annotations.push({
    type: 'device',
    description: `${board.name}: ${config.term}${config.hop ? ` via ${config.hop}` : ''}, transfers by ${config.transfer}, hostname ${r.only.output.trim()}`,
  });
});
