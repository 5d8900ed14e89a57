/**
 * TelnetStream against a fake telnet server on 127.0.0.1. The client side of the TCP
 * connection is re-chunked before TelnetStream sees it, so every sequence is delivered
 * split at every byte boundary (or in one piece) deterministically, whatever TCP did.
 */
import net from 'node:net';
import { Duplex } from 'node:stream';

import { expect, test } from '@playwright/test';

import { TelnetStream, type TelnetTerminal } from '../../src/transport/telnetStream.js';

const IAC = 255,
  DONT = 254,
  DO = 253,
  WONT = 252,
  WILL = 251,
  SB = 250,
  SE = 240;
const NOP = 241,
  AYT = 246,
  IP = 244;
const BINARY = 0,
  ECHO = 1,
  SGA = 3,
  TTYPE = 24,
  NAWS = 31,
  LINEMODE = 34,
  NEW_ENVIRON = 39;

const NAMES: Record<number, string> = { [DO]: 'DO', [DONT]: 'DONT', [WILL]: 'WILL', [WONT]: 'WONT' };

/** The server's view of what the client sent: negotiation, subnegotiation, commands and data. */
function tokens(bytes: Buffer): string[] {
  const out: string[] = [];
  let data = '';
  const flush = () => {
    if (data) out.push(`data ${JSON.stringify(data)}`);
    data = '';
  };
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== IAC) {
      data += String.fromCharCode(bytes[i]!);
      continue;
    }
    const next = bytes[++i]!;
    if (next === IAC) {
      data += '\xff';
    } else if (NAMES[next]) {
      flush();
      out.push(`${NAMES[next]} ${bytes[++i]}`);
    } else if (next === SB) {
      flush();
      const payload: number[] = [];
      for (i++; !(bytes[i] === IAC && bytes[i + 1] === SE); i++) {
        if (bytes[i] === IAC && bytes[i + 1] === IAC) i++;
        payload.push(bytes[i]!);
      }
      i++;
      out.push(`SB ${Buffer.from(payload).toString('hex')}`);
    } else {
      flush();
      out.push(`IAC ${next}`);
    }
  }
  flush();
  return out;
}

/** A client-side stream that re-chunks what the socket received: one byte per chunk, or as received. */
class Rechunked extends Duplex {
  constructor(
    private readonly socket: net.Socket,
    split: 'bytes' | 'none',
  ) {
    super({ readableObjectMode: true }); // object mode: every push is its own 'data' event
    socket.on('data', (chunk: Buffer) => {
      if (split === 'none') this.push(chunk);
      else for (let i = 0; i < chunk.length; i++) this.push(chunk.subarray(i, i + 1));
    });
    socket.on('end', () => this.push(null));
    socket.on('close', () => this.destroy());
  }
  override _read(): void {}
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.socket.write(chunk, callback);
  }
  override _final(callback: () => void): void {
    this.socket.end();
    callback();
  }
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy();
    callback(error);
  }
}

/** The client's own requests, sent as soon as it connects. */
const OPENING = [`DO ${BINARY}`, `DO ${SGA}`, `WILL ${BINARY}`, `WILL ${SGA}`];

const TERMINAL: TelnetTerminal = { termType: 'xterm-256color', cols: 255, rows: 511 };

/** A fake server with one connected TelnetStream client. */
async function connectPair(split: 'bytes' | 'none', terminal: TelnetTerminal = TERMINAL, nopAcks = false) {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const peer = await accepted;
  peer.setNoDelay(true);
  let received = Buffer.alloc(0);
  peer.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));

  const telnet = new TelnetStream(new Rechunked(socket, split), { ...terminal, nopAcks });
  let data = Buffer.alloc(0);
  const closes: (Error | undefined)[] = [];
  telnet.attach({ data: (bytes) => (data = Buffer.concat([data, bytes])), closed: (error) => closes.push(error) });

  // The client asks for its options as soon as it connects; later exchanges start after that.
  await expect.poll(() => tokens(received)).toEqual(OPENING);

  let round = 0;
  return {
    telnet,
    peer,
    closes,
    /** Everything the client decoded so far. */
    data: () => data,
    /**
     * Sends `bytes` from the server, waits until the client has decoded all of it and
     * answered, and returns what the client sent in the meantime (as tokens).
     */
    async exchange(bytes: Buffer | number[]): Promise<string[]> {
      const marker = `<sync${++round}>`;
      const before = received.length;
      const decodedBefore = data.length;
      peer.write(Buffer.concat([Buffer.from(bytes), Buffer.from(marker)]));
      await expect.poll(() => data.subarray(decodedBefore).includes(marker), { message: `client decoded ${marker}` }).toBe(true);
      telnet.write(`<ack${round}>`);
      await expect.poll(() => received.includes(`<ack${round}>`), { message: `server got <ack${round}>` }).toBe(true);
      data = Buffer.concat([data.subarray(0, data.length - marker.length)]);
      const sent = received.subarray(before);
      return tokens(sent.subarray(0, sent.length - `<ack${round}>`.length));
    },
    async close() {
      telnet.destroy();
      peer.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

for (const split of ['bytes', 'none'] as const) {
  test.describe(`split: ${split}`, () => {
    test('negotiation follows the policy: accepted options confirmed, everything else refused', async () => {
      const pair = await connectPair(split);
      const replies = await pair.exchange([
        IAC,
        WILL,
        BINARY,
        IAC,
        DO,
        BINARY,
        IAC,
        WILL,
        SGA,
        IAC,
        DO,
        SGA, // confirmations of our requests
        IAC,
        DO,
        TTYPE,
        IAC,
        DO,
        NAWS,
        IAC,
        WILL,
        ECHO,
        IAC,
        DO,
        ECHO,
        IAC,
        DO,
        LINEMODE,
        IAC,
        DO,
        NEW_ENVIRON,
        IAC,
        DO,
        200,
        IAC,
        WILL,
        201,
        IAC,
        WILL,
        TTYPE,
      ]);
      expect(replies).toEqual([
        `WILL ${TTYPE}`,
        `WILL ${NAWS}`,
        'SB 1f00ff01ff', // NAWS 255 x 511: both contain 0xFF, sent doubled and read back here
        `DO ${ECHO}`,
        `WILL ${ECHO}`, // see telnetStream.ts: keeps BSD telnetd from sending TCP urgent data
        `WONT ${LINEMODE}`,
        `WONT ${NEW_ENVIRON}`,
        `WONT 200`,
        `DONT 201`,
        `DONT ${TTYPE}`,
      ]);
      expect(pair.telnet.enabled('remote', BINARY)).toBe(true);
      expect(pair.telnet.enabled('local', BINARY)).toBe(true);
      expect(pair.telnet.enabled('local', NAWS)).toBe(true);
      expect(pair.telnet.enabled('remote', ECHO)).toBe(true);

      const ttype = await pair.exchange([IAC, SB, TTYPE, 1, IAC, SE]);
      expect(ttype).toEqual([`SB ${Buffer.concat([Buffer.from([TTYPE, 0]), Buffer.from('xterm-256color')]).toString('hex')}`]);
      expect(pair.data().length).toBe(0);
      await pair.close();
    });

    test('no negotiation loops: confirmations are never answered, refusals are not re-asked', async () => {
      const pair = await connectPair(split);
      // The server refuses our requests, then repeats itself and confirms things twice.
      expect(await pair.exchange([IAC, WONT, BINARY, IAC, DONT, BINARY, IAC, WONT, BINARY, IAC, DONT, BINARY])).toEqual([]);
      expect(await pair.exchange([IAC, WILL, SGA, IAC, WILL, SGA, IAC, DO, SGA, IAC, DO, SGA])).toEqual([]);
      // A server-initiated option accepted once, its repetition ignored.
      expect(await pair.exchange([IAC, WILL, ECHO, IAC, WILL, ECHO])).toEqual([`DO ${ECHO}`]);
      // Turned off by the server: acknowledged once; turned off again: silence.
      expect(await pair.exchange([IAC, WONT, ECHO, IAC, WONT, ECHO])).toEqual([`DONT ${ECHO}`]);
      // Refused options asked again are refused again, one reply per request.
      expect(await pair.exchange([IAC, DO, 99, IAC, DO, 99])).toEqual(['WONT 99', 'WONT 99']);
      // Repeated DONT / WONT for options that are off: nothing.
      expect(await pair.exchange([IAC, DONT, 99, IAC, WONT, 98, IAC, DONT, NAWS])).toEqual([]);
      expect(pair.telnet.enabled('remote', BINARY)).toBe(false);
      expect(pair.telnet.enabled('local', BINARY)).toBe(false);
      expect(pair.telnet.enabled('local', SGA)).toBe(true);
      await pair.close();
    });

    test('data: IAC IAC is 0xFF, commands and subnegotiations (escaped 0xFF, unknown options) vanish', async () => {
      const pair = await connectPair(split);
      await pair.exchange([IAC, WILL, BINARY]);
      const replies = await pair.exchange([
        ...Buffer.from('a'),
        IAC,
        IAC,
        ...Buffer.from('b'),
        IAC,
        NOP,
        ...Buffer.from('c'),
        IAC,
        AYT,
        IAC,
        SB,
        201,
        1,
        2,
        IAC,
        IAC,
        3,
        IAC,
        SE, // unknown option: skipped whole
        IAC,
        SB,
        TTYPE,
        1,
        IAC,
        SE, // TTYPE SEND before TTYPE was agreed: not answered
        IAC,
        SB,
        NAWS,
        IAC,
        IAC,
        IAC,
        IAC,
        IAC,
        SE, // something we never agreed to
        ...Buffer.from('d'),
        IAC,
        IAC,
        IAC,
        IAC,
        0,
        0x0d,
        0,
        0x0d,
        0x0a,
      ]);
      expect(replies).toEqual([]);
      expect([...pair.data()]).toEqual([...Buffer.from('a\xffbcd', 'latin1'), 0xff, 0xff, 0, 0x0d, 0, 0x0d, 0x0a]);
      await pair.close();
    });

    test('a subnegotiation without IAC SE ends at the next command instead of swallowing the stream', async () => {
      const pair = await connectPair(split);
      const replies = await pair.exchange([IAC, SB, 201, 1, 2, IAC, DO, 77, ...Buffer.from('text')]);
      expect(replies).toEqual(['WONT 77']);
      expect(pair.data().toString()).toBe('text');
      await pair.close();
    });

    test('outside binary mode CR NUL is CR both ways; in binary mode bytes pass unchanged', async () => {
      const pair = await connectPair(split);
      await pair.exchange([IAC, WONT, BINARY, IAC, DONT, BINARY]);
      await pair.exchange([...Buffer.from('a\r\0b\r\nc\r'), 0, 0, IAC, IAC]);
      expect([...pair.data()]).toEqual([...Buffer.from('a\rb\r\nc\r'), 0, 0xff]);
      pair.telnet.write(Buffer.from([0x78, 0x0d, 0x79, 0x0d, 0x0a, 0xff, 0x0d]));
      expect(await pair.exchange([])).toEqual([`data ${JSON.stringify('x\r\0y\r\n\xff\r\0')}`]);

      const binary = await connectPair(split);
      await binary.exchange([IAC, WILL, BINARY, IAC, DO, BINARY]);
      await binary.exchange([...Buffer.from('a\r\0b\r\nc\r'), 0, 0]);
      expect([...binary.data()]).toEqual([...Buffer.from('a\r\0b\r\nc\r'), 0, 0]);
      binary.telnet.write(Buffer.from([0x78, 0x0d, 0x79, 0xff]));
      expect(await binary.exchange([])).toEqual([`data ${JSON.stringify('x\ry\xff')}`]);
      await pair.close();
      await binary.close();
    });
  });
}

test('window size and terminal type come from the options; IP goes out as a command', async () => {
  const pair = await connectPair('bytes', { termType: 'vt100', cols: 80, rows: 24 });
  expect(await pair.exchange([IAC, DO, NAWS, IAC, DO, TTYPE, IAC, SB, TTYPE, 1, IAC, SE])).toEqual([
    `WILL ${NAWS}`,
    'SB 1f00500018',
    `WILL ${TTYPE}`,
    `SB ${Buffer.concat([Buffer.from([TTYPE, 0]), Buffer.from('vt100')]).toString('hex')}`,
  ]);
  pair.telnet.command(IP);
  expect(await pair.exchange([])).toEqual([`IAC ${IP}`]);
  await pair.close();
});

test('the end of the connection is reported once, and writing afterwards throws', async () => {
  const pair = await connectPair('none');
  await pair.exchange([...Buffer.from('bye')]);
  pair.peer.end();
  await expect.poll(() => pair.closes.length).toBe(1);
  expect(pair.closes[0]).toBeUndefined();
  expect(pair.telnet.closed).toBe(true);
  expect(() => pair.telnet.write('more')).toThrow(/closed/);
  await pair.telnet.close();
  expect(pair.closes.length).toBe(1);
  await pair.close();
});

test('with nopAcks, data that gets no other answer is answered with one IAC NOP per chunk', async () => {
  const pair = await connectPair('none', TERMINAL, true);
  // A chunk answered anyway carries the ACK itself; a chunk of data alone gets a NOP.
  // (TCP may deliver an exchange in more than one chunk, hence "NOPs only" below.)
  const negotiated = await pair.exchange([IAC, DO, 99]);
  expect(negotiated[0]).toBe('WONT 99');
  expect(negotiated.slice(1).every((token) => token === `IAC ${NOP}`)).toBe(true);
  const data = await pair.exchange([...Buffer.from('output')]);
  expect(data.length).toBeGreaterThan(0);
  expect(data.every((token) => token === `IAC ${NOP}`)).toBe(true);
  expect(pair.data().toString()).toBe('output');
  await pair.close();
});
