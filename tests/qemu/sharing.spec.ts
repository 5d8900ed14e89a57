/**
 * One console, several users, and a terminal server that lets the connection drop: on the
 * Linux board's real serial console, reached directly or through a TCP relay standing in
 * for a terminal server's port.
 */
import net from 'node:net';

import { defineLab } from '../../src/config/defineLab.js';
import type { LabEvent } from '../../src/host/events.js';
import { Lab } from '../../src/host/lab.js';
import { ConsoleBusyError } from '../../src/util/errors.js';
import { boardHost, expect, test } from '../helpers/qemuLab.js';

test.describe.configure({ mode: 'default' });

/**
 * A terminal-server port: one connection to the board's console, relayed to one client at
 * a time on 127.0.0.1:<port>. What the board prints while no client is connected is kept
 * and delivered to the next client, as buffering terminal servers do. `drop()` cuts the
 * client (the board side stays connected).
 */
async function terminalServer(consolePort: number) {
  const board = net.connect(consolePort, '127.0.0.1');
  board.on('error', () => {});
  let client: net.Socket | undefined;
  let buffered: Buffer[] = [];
  board.on('data', (chunk: Buffer) => (client ? client.write(chunk) : buffered.push(chunk)));
  const server = net.createServer((socket) => {
    client?.destroy();
    client = socket;
    for (const chunk of buffered) socket.write(chunk);
    buffered = [];
    socket.on('data', (chunk: Buffer) => board.write(chunk));
    const gone = () => {
      if (client === socket) client = undefined;
    };
    socket.on('close', gone).on('error', gone);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    drop: () => client?.destroy(),
    close: async () => {
      client?.destroy();
      board.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test('a second user of a busy console waits its turn, then gets a clear error past its bound', async ({ linux }) => {
  await linux.host.console.close();
  const lab = new Lab(
    defineLab({ hosts: { dut: boardHost(linux.board, { console: { transport: 'tcp', port: linux.board.consolePort, claimTimeout: 1_500 } }) } }),
  );
  const events: LabEvent[] = [];
  lab.events.on((event) => events.push(event));
  try {
    const dut = lab.remote('dut');
    expect(await dut.run('echo ready')).toHaveOutput('ready');
    // Queued: the second user gets the console only after the command ended (the board printed its output).
    const first = dut.run('sleep 1; echo first');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const sawFirstWhenGranted = await dut.console.exclusive(async () => events.some((event) => event.type === 'console' && event.line === 'first'));
    expect(sawFirstWhenGranted).toBe(true);
    expect(await first).toHaveOutput('first');
    // Past its bound: a ConsoleBusyError naming the holder.
    const long = dut.run('sleep 4; echo long');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const error = await dut.console.send('\n').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConsoleBusyError);
    expect(String((error as Error).message)).toMatch(
      /^dut \(console\): the console is busy: shell command "sleep 4; echo long" \(session "console"\) has held it for .*, and send waited 1\.50 s\./,
    );
    expect((await long).only.output).toBe('long\n');
  } finally {
    await lab.close();
  }
});

test('a second lab (another worker) cannot read a console another lab holds', async ({ linux }) => {
  await linux.host.console.close();
  const input = { hosts: { dut: boardHost(linux.board, { console: { transport: 'tcp', port: linux.board.consolePort, claimTimeout: 1_000 } }) } };
  const first = new Lab(defineLab(input));
  const second = new Lab(defineLab(input));
  try {
    expect(await first.remote('dut').run('echo mine')).toHaveOutput('mine');
    const error = await second
      .remote('dut')
      .run('echo theirs')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConsoleBusyError);
    expect(String((error as Error).message)).toContain(
      `the console tcp:127.0.0.1:${linux.board.consolePort} is in use by another labwright process on this runner (pid ${process.pid}`,
    );
    // Once the first lab lets go, the second one gets the console.
    await first.close();
    expect(await second.remote('dut').run('echo theirs now')).toHaveOutput('theirs now');
  } finally {
    await first.close();
    await second.close();
  }
});

test('a terminal server dropping the connection mid-command gives a clear error; the next use reconnects and loses nothing', async ({ linux }) => {
  await linux.host.console.close();
  const server = await terminalServer(linux.board.consolePort);
  const lab = new Lab(defineLab({ hosts: { ts: boardHost(linux.board, { console: { transport: 'tcp', port: server.port } }) } }));
  const events: LabEvent[] = [];
  lab.events.on((event) => events.push(event));
  try {
    const ts = lab.remote('ts');
    expect(await ts.run('echo connected')).toHaveOutput('connected');
    const running = ts.run('echo started; sleep 3; echo finished', { timeout: 20_000 });
    await ts.console.waitFor(/started/, { timeout: 10_000 });
    server.drop();
    const cut = (await running).only;
    expect(cut.status).toBe('error');
    expect(cut.exitCode).toBeNull();
    expect(cut.output).toContain('started');
    expect(cut.error).toContain(`ts (console): the console connection (tcp 127.0.0.1:${server.port}) was lost: the other end closed the connection.`);
    // The next use reconnects; what the board printed meanwhile (kept by the server) arrives.
    await ts.console.waitFor(/finished/, { timeout: 10_000 });
    expect(events.some((event) => event.type === 'console' && event.line === 'finished')).toBe(true);
    // The shell is still logged in on the board: found again, not logged in anew.
    const again = await ts.run('echo reconnected');
    expect(again).toHaveOutput('reconnected');
    expect(events.filter((event) => event.type === 'console' && /login: /.test(event.line))).toEqual([]);
  } finally {
    await lab.close();
    await server.close();
  }
});
