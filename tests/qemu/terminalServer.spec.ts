/**
 * A telnet console on a real terminal server: ser2net serving a serial line (a socat pty
 * pair with getty on the board end) as a telnet port with RFC 2217. labwright offers
 * COM-PORT-OPTION, ser2net agrees and acknowledges the line settings, and the console
 * logs in and runs commands through telnet's byte stream.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { test as base } from '@playwright/test';

import { probeTcp } from '../../fixtures/lab/startLab.js';
import { freePort } from '../../fixtures/qemu/board.js';
import { testLab } from '../helpers/labs.js';
import { expect } from '../helpers/qemuLab.js';
import { SERIAL_PASSWORD, type SerialPair, serialPair } from '../helpers/serialPair.js';

const test = base.extend<{ pair: SerialPair }>({
  // eslint-disable-next-line no-empty-pattern -- Playwright requires a destructuring pattern
  pair: async ({}, use) => {
    const pair = await serialPair();
    await use(pair);
    await pair.stop();
  },
});

test('a telnet console on ser2net: RFC 2217 line settings acknowledged, login, commands, Ctrl+C', async ({ pair }) => {
  const port = await freePort();
  const config = path.join(pair.dir, 'ser2net.yaml');
  writeFileSync(config, `connection: &board\n  accepter: telnet(rfc2217),tcp,127.0.0.1,${port}\n  connector: serialdev,${pair.device},115200n81,local\n`);
  pair.spawn('ser2net', ['-d', '-u', '-c', config]);
  const { lab, events } = testLab({
    hosts: {
      ts: {
        term: 'console',
        users: { operator: { password: SERIAL_PASSWORD } },
        console: { transport: 'telnet', address: '127.0.0.1', port, baudRate: 57_600, dataBits: 8, parity: 'none', stopBits: 1, connectTimeout: 5_000 },
      },
    },
  });
  try {
    const ts = lab.remote('ts');
    for (let i = 0; i < 100 && !(await probeTcp('127.0.0.1', port, 200)).reachable; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    const r = await ts.run(['pwd', 'printf "%s\\n" "$((0xff))"', 'exit_with() { return $1; }; exit_with 9']);
    expect(r.results[0]).toHaveOutput('/tmp');
    expect(r.results[1]!.output).toBe('255\n');
    expect(r.results[2]).toHaveExitCode(9);
    const hung = (await ts.run('sleep 600', { timeout: 1_000 })).only;
    expect(hung.error).toMatch(/interrupted and recovered/);
    expect(await ts.run('echo after')).toHaveOutput('after');
    // The terminal server acknowledged what labwright asked for, and the console log says so.
    const notes = events.filter((event) => event.type === 'console' && event.line.startsWith('--- RFC 2217')).map((event) => (event as { line: string }).line);
    expect(notes).toContain('--- RFC 2217: the terminal server set baudRate 57600');
    expect(notes).toContain('--- RFC 2217: the terminal server set dataBits 8');
  } finally {
    await lab.close();
  }
});
