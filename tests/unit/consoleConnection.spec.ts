/**
 * The console connection and its carriers against in-process doubles on 127.0.0.1: one
 * user at a time (queue, nesting, busy errors), terminal queries answered even when split
 * across chunks, reconnect after a drop, RFC 2217 line settings offered to a terminal
 * server, and console config validation. The real components are in the qemu project.
 */
import net from 'node:net';

import { expect, test } from '@playwright/test';

import { defineLab } from '../../src/config/defineLab.js';
import { consoleOptionsSchema } from '../../src/config/schema.js';
import { ConsoleConnection } from '../../src/transport/consoleConnection.js';
import { openConsoleStream } from '../../src/transport/consoleOpen.js';
import { directPath } from '../../src/transport/network.js';
import { COM_PORT_OPTION } from '../../src/transport/rfc2217.js';
import { type ConfigError, ConsoleBusyError } from '../../src/util/errors.js';

/** A TCP server standing in for a terminal-server port; records what clients send. */
async function fakeConsole(onClient?: (socket: net.Socket) => void) {
  const received: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onClient?.(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    received: () => Buffer.concat(received),
    sockets,
    close: async () => {
      sockets.forEach((socket) => socket.destroy());
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function connectionTo(port: number, transport: 'tcp' | 'telnet' = 'tcp', claimTimeout = 300) {
  const options = consoleOptionsSchema.parse({ transport, port, claimTimeout });
  return new ConsoleConnection({
    host: 'dut',
    open: () => openConsoleStream('dut', options, directPath, '127.0.0.1'),
    lockKey: undefined,
    claimTimeout,
    answerQueries: true,
  });
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(check()).toBe(true);
};

test('a cursor-position query is answered once, even split across chunks', async () => {
  const server = await fakeConsole(async (socket) => {
    socket.write('prompt\x1b[');
    await new Promise((resolve) => setTimeout(resolve, 30));
    socket.write('6n and \x1b[5n');
  });
  const connection = connectionTo(server.port);
  try {
    await connection.ensure();
    await until(() => server.received().toString().includes('\x1b[0n'));
    expect(server.received().toString()).toBe('\x1b[1;1R\x1b[0n');
  } finally {
    await connection.close();
    await server.close();
  }
});

test('one user at a time: callers queue in order, nested calls pass, a caller past its bound gets ConsoleBusyError', async () => {
  const server = await fakeConsole();
  const connection = connectionTo(server.port);
  try {
    const order: string[] = [];
    let release!: () => void;
    const held = connection.exclusive('a long holder', async () => {
      order.push('a');
      // Nested: the holder's own calls do not wait for themselves.
      await connection.exclusive('nested', async () => order.push('a.nested'));
      await new Promise<void>((resolve) => (release = resolve));
    });
    const queued = connection.exclusive('b', async () => order.push('b'), 5_000);
    const late = connection.exclusive('c', async () => order.push('c'), 100).catch((error: unknown) => error);
    const error = await late;
    expect(error).toBeInstanceOf(ConsoleBusyError);
    expect((error as Error).message).toMatch(/^dut \(console\): the console is busy: a long holder has held it for \d+ ms, and c waited 100 ms\./);
    release();
    await held;
    await queued;
    expect(order).toEqual(['a', 'a.nested', 'b']);
  } finally {
    await connection.close();
    await server.close();
  }
});

test('a dropped connection is reported to the consumer and reopened on next use', async () => {
  const server = await fakeConsole();
  const connection = connectionTo(server.port);
  try {
    const lost: Error[] = [];
    await connection.ensure();
    connection.use({ data: () => {}, closed: (error) => lost.push(error) }, 'test');
    await until(() => server.sockets.size === 1);
    server.sockets.forEach((socket) => socket.destroy());
    await until(() => lost.length === 1);
    expect(lost[0]!.message).toMatch(/^dut \(console\): the console connection \(tcp 127\.0\.0\.1:\d+\) was lost: /);
    expect(connection.connected).toBe(false);
    await connection.write('again');
    await until(() => server.received().toString() === 'again');
  } finally {
    await connection.close();
    await server.close();
  }
});

test('telnet consoles offer RFC 2217 and send the line settings when the server agrees', async () => {
  const IAC = 255;
  const server = await fakeConsole((socket) => socket.write(Buffer.from([IAC, 253 /* DO */, COM_PORT_OPTION])));
  const options = consoleOptionsSchema.parse({
    transport: 'telnet',
    port: server.port,
    baudRate: 9600,
    dataBits: 7,
    parity: 'even',
    stopBits: 2,
    flowControl: 'hardware',
  });
  const stream = await openConsoleStream('dut', options, directPath, '127.0.0.1');
  try {
    await until(() => server.received().includes(Buffer.from([IAC, 250, COM_PORT_OPTION, 5])));
    const sent = server.received();
    expect(sent.includes(Buffer.from([IAC, 251 /* WILL */, COM_PORT_OPTION]))).toBe(true);
    expect(sent.includes(Buffer.from([IAC, 250, COM_PORT_OPTION, 1, 0, 0, 0x25, 0x80, IAC, 240]))).toBe(true); // 9600 baud
    expect(sent.includes(Buffer.from([IAC, 250, COM_PORT_OPTION, 2, 7, IAC, 240]))).toBe(true); // 7 data bits
    expect(sent.includes(Buffer.from([IAC, 250, COM_PORT_OPTION, 3, 3, IAC, 240]))).toBe(true); // even parity
    expect(sent.includes(Buffer.from([IAC, 250, COM_PORT_OPTION, 4, 2, IAC, 240]))).toBe(true); // 2 stop bits
    expect(sent.includes(Buffer.from([IAC, 250, COM_PORT_OPTION, 5, 3, IAC, 240]))).toBe(true); // hardware flow control
    expect(stream.description).toBe(`telnet 127.0.0.1:${server.port} (RFC 2217 9600 7E2 hardware flow if offered)`);
  } finally {
    await stream.close();
    await server.close();
  }
});

test('console config: the missing port or path, a serial console behind a hop, and term console without a console are named', () => {
  const problems = (() => {
    try {
      defineLab({
        hosts: {
          a: { users: { root: {} }, console: { transport: 'tcp' } },
          b: { users: { root: {} }, console: { transport: 'serial' } },
          c: { address: 'c', users: { root: {} }, term: 'console' },
          d: { users: { root: {} }, hop: 'e', console: { transport: 'serial', path: '/dev/ttyUSB0' } },
          e: { address: 'e', users: { root: {} } },
          f: { users: { root: {} } },
        },
      });
    } catch (error) {
      return (error as ConfigError).problems;
    }
    return [];
  })();
  expect(problems).toEqual([
    `host "a" → console.port: a tcp console needs the terminal server's port`,
    `host "b" → console.path: a serial console needs the device path (path: "/dev/ttyUSB0")`,
    `host "c" → term: "console" needs a console section (console: { transport, port | path })`,
    `host "d" → console.transport: a serial device is local to the runner and cannot be reached through hop "e"; put the device behind ser2net or a terminal server (transport "tcp" or "telnet")`,
    `host "f" → address: required (only a host with a console may leave it out)`,
  ]);
});
