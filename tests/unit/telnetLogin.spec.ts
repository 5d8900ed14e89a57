/**
 * The telnet login dialogue against scripted fake devices on 127.0.0.1: the prompt
 * shapes that real devices use besides inetutils telnetd (password only, no password,
 * refusals without a failure message, hang-ups, silence).
 */
import net from 'node:net';

import { expect, test } from '@playwright/test';

import { telnetOptionsSchema } from '../../src/config/schema.js';
import { ClosedBeforeTypingError, telnetLogin, type TelnetLoginParams } from '../../src/session/telnetLogin.js';
import { TelnetStream } from '../../src/transport/telnetStream.js';
import { ConnectionError } from '../../src/util/errors.js';

/** The device side: text out, typed lines in (telnet commands from the client skipped). */
interface DeviceIo {
  write(text: string): void;
  /** The next line the client typed, without its line end. */
  readLine(): Promise<string>;
  close(): void;
}

async function withDevice(script: (io: DeviceIo) => Promise<void>, params: Partial<TelnetLoginParams> = {}) {
  const server = net.createServer();
  const scriptDone: Promise<void>[] = [];
  server.on('connection', (socket) => {
    let pending = '';
    let skip = 0;
    const waiting: ((line: string) => void)[] = [];
    const lines: string[] = [];
    socket.on('data', (chunk: Buffer) => {
      for (const byte of chunk) {
        if (skip > 0) {
          skip--;
          continue;
        }
        if (skip === -1) {
          skip = byte >= 251 && byte <= 254 ? 1 : 0; // IAC DO/DONT/WILL/WONT <option>, or IAC NOP
          continue;
        }
        if (byte === 255) {
          skip = -1; // the client's telnet commands
          continue;
        }
        if (byte === 0x0a) {
          const line = pending.replace(/\r$/, '');
          pending = '';
          const waiter = waiting.shift();
          if (waiter) waiter(line);
          else lines.push(line);
        } else {
          pending += String.fromCharCode(byte);
        }
      }
    });
    socket.on('error', () => {});
    const io: DeviceIo = {
      write: (text) => void socket.write(text),
      readLine: () => {
        const line = lines.shift();
        return line !== undefined ? Promise.resolve(line) : new Promise((resolve) => waiting.push(resolve));
      },
      close: () => socket.end(),
    };
    scriptDone.push(script(io));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const telnet = new TelnetStream(socket, { termType: 'dumb', cols: 80, rows: 24 });
  const result = await telnetLogin(telnet, {
    host: 'dut',
    endpoint: `127.0.0.1:${port}`,
    user: 'admin',
    password: 'device-secret-7',
    options: telnetOptionsSchema.parse({ loginTimeout: 5_000 }),
    newline: '\n',
    ...params,
  }).then(
    (rest) => ({ rest: rest.toString(), error: undefined }),
    (error: unknown) => ({ rest: undefined, error: error as ConnectionError }),
  );
  telnet.destroy();
  await Promise.all(scriptDone);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return result;
}

/** Answers the client's probe line like a shell would. */
async function answerProbe(io: DeviceIo): Promise<void> {
  const probe = await io.readLine();
  const id = /printf 'LWL_%s\\n' ([a-z0-9]+);; esac$/.exec(probe)?.[1];
  expect(id, `probe line ${JSON.stringify(probe)}`).toBeTruthy();
  io.write(`${probe}\r\nLWL_${id}\r\n$ `);
}

test('a classic login: user, password, motd, shell; the rest after the probe is handed on', async () => {
  const typed: string[] = [];
  const { rest, error } = await withDevice(async (io) => {
    io.write('\r\nWelcome to the switch\r\n\r\nswitch login: ');
    typed.push(await io.readLine());
    io.write('Password: ');
    typed.push(await io.readLine());
    io.write('\r\nLast login: Mon Jan  1 00:00:00 from 10.0.0.1\r\nswitch$ ');
    await answerProbe(io);
  });
  expect(error).toBeUndefined();
  expect(typed).toEqual(['admin', 'device-secret-7']);
  expect(rest).toBe('$ ');
});

test('a device that asks only for a password', async () => {
  const { error } = await withDevice(async (io) => {
    io.write('Password: ');
    expect(await io.readLine()).toBe('device-secret-7');
    io.write('\r\n# ');
    await answerProbe(io);
  });
  expect(error).toBeUndefined();
});

test('a user without a password gets straight to a shell', async () => {
  const { error } = await withDevice(
    async (io) => {
      io.write('login: ');
      expect(await io.readLine()).toBe('admin');
      io.write('admin\r\n~ # ');
      await answerProbe(io);
    },
    { password: undefined },
  );
  expect(error).toBeUndefined();
});

test('a password prompt for a user configured without one is an auth error', async () => {
  const { error } = await withDevice(
    async (io) => {
      io.write('login: ');
      await io.readLine();
      io.write('Password: ');
    },
    { password: undefined },
  );
  expect(error).toBeInstanceOf(ConnectionError);
  expect(error!.kind).toBe('auth');
  expect(error!.message).toBe(
    'dut (telnet): the device asks for a password for "admin" and the lab config has none. Add a password for user "admin" of host "dut" to the lab config.',
  );
});

test('refusals: a failure message, or the same prompt again; the password never shows', async () => {
  const failed = await withDevice(async (io) => {
    io.write('Username: ');
    await io.readLine();
    io.write('Password: ');
    await io.readLine();
    io.write('\r\n% Authentication failed\r\n\r\nUsername: ');
  });
  expect(failed.error!.kind).toBe('auth');
  expect(failed.error!.message).toMatch(/^dut \(telnet\): login as "admin" on 127\.0\.0\.1:\d+ was refused: the device answered "% Authentication failed"\. /);

  const again = await withDevice(async (io) => {
    io.write('login: ');
    await io.readLine();
    io.write('Password: ');
    await io.readLine();
    io.write('\r\nPassword: ');
  });
  expect(again.error!.kind).toBe('auth');
  expect(again.error!.message).toMatch(/was refused: the device asked for the password again: "Password:"/);
  expect(again.error!.message).not.toContain('device-secret-7');
});

test('a hang-up and silence are reported with the stage and the last output', async () => {
  const hangup = await withDevice(async (io) => {
    io.write('login: ');
    await io.readLine();
    io.write('Too many sessions\r\n');
    io.close();
  });
  expect(hangup.error!.kind).toBe('closed');
  expect(hangup.error!.message).toMatch(
    /^dut \(telnet\): the device closed the connection during the login \(no password prompt after the user name\); last output: ".*Too many sessions\\n"\. /,
  );

  const silent = await withDevice(async (io) => io.write('Press RETURN to get started'), { options: telnetOptionsSchema.parse({ loginTimeout: 800 }) });
  expect(silent.error!.kind).toBe('timeout');
  expect(silent.error!.message).toBe(
    `dut (telnet): the login on ${silent.error!.message.match(/127\.0\.0\.1:\d+/)![0]} did not complete within 800 ms (no login prompt seen); last output: "Press RETURN to get started". Check telnet.loginPrompt and telnet.passwordPrompt against the output above, or raise telnet.loginTimeout.`,
  );
});

test('a device closing the connection right after its login prompt, before anything was typed, says so and can be tried again', async () => {
  const early = await withDevice(async (io) => {
    io.write('\r\nboard login: ');
    io.close();
  });
  expect(early.error).toBeInstanceOf(ClosedBeforeTypingError);
  expect(early.error!.kind).toBe('closed');
  expect(early.error!.message).toMatch(
    /^dut \(telnet\): the device closed the connection during the login \((the login prompt had come, nothing typed yet|no login prompt seen)\); last output: /,
  );

  const late = await withDevice(async (io) => {
    io.write('login: ');
    await io.readLine();
    io.close();
  });
  expect(late.error).not.toBeInstanceOf(ClosedBeforeTypingError);
});
