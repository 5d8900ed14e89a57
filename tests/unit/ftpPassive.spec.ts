/**
 * The prepareTransfer replacement on its own: a fake FTP control context answers EPSV/PASV,
 * a fake NetworkPath records what it is asked and serves a real local TCP endpoint.
 */
import net from 'node:net';

import { expect, test } from '@playwright/test';
import { type Client, type FTPContext, FTPError, type FTPResponse } from 'basic-ftp';

import { parseEpsvPort, parsePasvPort, type PassiveCommand, PassiveDataConnector } from '../../src/transfer/ftp/passive.js';
import type { LocalEndpoint, NetworkPath } from '../../src/transport/network.js';
import { ConnectionError } from '../../src/util/errors.js';

/** A control context that answers passive commands from a script and keeps the data socket. */
class FakeControl {
  readonly sent: string[] = [];
  private socketOfData: net.Socket | undefined;
  readonly socket = new net.Socket(); // not TLS: data sockets stay plain
  tlsOptions = {};
  tlsSessionStore = undefined;

  constructor(private readonly replies: Partial<Record<PassiveCommand, FTPResponse | FTPError>>) {}

  async request(command: string): Promise<FTPResponse> {
    this.sent.push(command);
    const reply = this.replies[command as PassiveCommand];
    if (!reply) throw new FTPError({ code: 500, message: `500 Unknown command ${command}.` });
    if (reply instanceof FTPError) throw reply;
    return reply;
  }

  /** Like basic-ftp's setter: the context owns the socket's errors from now on. */
  set dataSocket(socket: net.Socket | undefined) {
    socket?.on('error', () => {});
    this.socketOfData = socket;
  }

  get dataSocket(): net.Socket | undefined {
    return this.socketOfData;
  }

  asContext(): FTPContext {
    return this as unknown as FTPContext;
  }
}

/** A NetworkPath that serves every endpoint from one local TCP server and records the calls. */
class FakePath implements NetworkPath {
  readonly description = 'via fake hop';
  readonly asked: Array<{ address: string; port: number; released: boolean }> = [];
  accepted = 0;
  private readonly server = net.createServer((socket) => {
    this.accepted++;
    socket.destroy();
  });
  fail: Error | undefined;

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
  }

  get localPort(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  async connect(): Promise<never> {
    throw new Error('not used');
  }

  async endpoint(address: string, port: number): Promise<LocalEndpoint> {
    if (this.fail) throw this.fail;
    const record = { address, port, released: false };
    this.asked.push(record);
    return { host: '127.0.0.1', port: this.localPort, release: async () => void (record.released = true) };
  }

  close(): void {
    this.server.close();
  }
}

/** Installs a connector on a stand-in client and returns its prepareTransfer. */
function installed(connector: PassiveDataConnector): (ftp: FTPContext) => Promise<FTPResponse> {
  const client = { prepareTransfer: undefined } as unknown as Client;
  connector.install(client);
  return client.prepareTransfer;
}

const context = { host: 'dut1', protocol: 'ftp' as const };

test('parses the ports of EPSV and PASV replies', () => {
  expect(parseEpsvPort('229 Entering Extended Passive Mode (|||6446|)')).toBe(6446);
  expect(parseEpsvPort('229 Entering Extended Passive Mode (!!!6446!)')).toBe(6446);
  expect(parseEpsvPort('229 Entering Extended Passive Mode (|||99999|)')).toBeUndefined();
  expect(parseEpsvPort('229 nonsense')).toBeUndefined();
  expect(parsePasvPort('227 Entering Passive Mode (10,99,0,7,117,49).')).toBe(117 * 256 + 49);
  expect(parsePasvPort('227 Entering Passive Mode (10,99,0,7,0,0)')).toBeUndefined();
  expect(parsePasvPort('227 =1,2,3,4,5,6')).toBe(5 * 256 + 6);
});

test.describe('PassiveDataConnector', () => {
  let path: FakePath;
  test.beforeEach(async () => {
    path = new FakePath();
    await path.start();
  });
  test.afterEach(() => path.close());

  test('maps the PASV port through path.endpoint() and never uses the announced address', async () => {
    // The server announces an address the runner cannot reach (a device-internal one).
    const control = new FakeControl({ PASV: { code: 227, message: '227 Entering Passive Mode (10,99,0,7,117,49).' } });
    const prepare = installed(new PassiveDataConnector({ address: 'dut1.lab', path, context, connectTimeout: 2_000, commands: ['PASV'] }));
    const reply = await prepare(control.asContext());
    expect(reply.code).toBe(227);
    expect(path.asked).toEqual([{ address: 'dut1.lab', port: 30001, released: false }]);
    // The data socket is a real net.Socket connected to the endpoint.
    expect(control.dataSocket).toBeInstanceOf(net.Socket);
    expect(control.dataSocket?.remotePort).toBe(path.localPort);
    await expect.poll(() => path.accepted).toBe(1);
    control.dataSocket?.destroy();
  });

  test('maps the EPSV port the same way', async () => {
    const control = new FakeControl({ EPSV: { code: 229, message: '229 Entering Extended Passive Mode (|||40123|)' } });
    const prepare = installed(new PassiveDataConnector({ address: '10.0.0.5', path, context, connectTimeout: 2_000 }));
    await prepare(control.asContext());
    expect(control.sent).toEqual(['EPSV']);
    expect(path.asked).toEqual([{ address: '10.0.0.5', port: 40123, released: false }]);
    control.dataSocket?.destroy();
  });

  test('falls back to PASV when EPSV is refused, remembers it, and releases endpoints', async () => {
    const control = new FakeControl({
      EPSV: new FTPError({ code: 500, message: '500 Unknown command.' }),
      PASV: { code: 227, message: '227 Entering Passive Mode (192,168,1,1,100,1)' },
    });
    const connector = new PassiveDataConnector({ address: 'dut1.lab', path, context, connectTimeout: 2_000 });
    const prepare = installed(connector);
    await prepare(control.asContext());
    expect(control.sent).toEqual(['EPSV', 'PASV']);
    await prepare(control.asContext());
    expect(control.sent).toEqual(['EPSV', 'PASV', 'PASV']);
    // The second data connection replaced the first: its endpoint is released already.
    expect(path.asked.map((a) => a.released)).toEqual([true, false]);
    await connector.release();
    expect(path.asked.map((a) => a.released)).toEqual([true, true]);
    control.dataSocket?.destroy();
  });

  test('a server refusing both passive commands is a clear protocol error', async () => {
    const control = new FakeControl({});
    const prepare = installed(new PassiveDataConnector({ address: 'dut1.lab', path, context, connectTimeout: 2_000 }));
    const error = await prepare(control.asContext()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as ConnectionError).kind).toBe('protocol');
    expect((error as Error).message).toMatch(
      /^dut1 \(ftp\): the server refused passive mode \(EPSV: 500 Unknown command EPSV\.; PASV: 500 Unknown command PASV\.\)\. .*pasv_enable/,
    );
    expect(path.asked).toEqual([]);
  });

  test('a refused data connection names the data port and the endpoint', async () => {
    const control = new FakeControl({ EPSV: { code: 229, message: '229 (|||40123|)' } });
    const closed = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const refusing: NetworkPath = {
      ...path,
      description: 'via fake hop',
      connect: path.connect,
      endpoint: async () => ({ host: '127.0.0.1', port: closed, release: async () => {} }),
    };
    const prepare = installed(new PassiveDataConnector({ address: 'dut1.lab', path: refusing, context, connectTimeout: 2_000 }));
    const error = await prepare(control.asContext()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionError);
    expect((error as ConnectionError).kind).toBe('refused');
    expect((error as Error).message).toContain(
      `dut1 (ftp): cannot open the FTP data connection to dut1.lab:40123 (through 127.0.0.1:${closed}): ECONNREFUSED.`,
    );
  });

  test('an endpoint failure of the path is passed on', async () => {
    path.fail = new ConnectionError('unreachable', 'the hop cannot reach dut1.lab:40123.', context);
    const control = new FakeControl({ EPSV: { code: 229, message: '229 (|||40123|)' } });
    const prepare = installed(new PassiveDataConnector({ address: 'dut1.lab', path, context, connectTimeout: 2_000 }));
    await expect(prepare(control.asContext())).rejects.toThrow('dut1 (ftp): the hop cannot reach dut1.lab:40123.');
  });
});
