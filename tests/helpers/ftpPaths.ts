/**
 * NetworkPath doubles for FTP tests: a path that records every endpoint asked of it and
 * serves it through a real local TCP forwarder, so tests can see which address and port
 * labwright asked for, that data connections really went through the endpoint, what their
 * first bytes were (TLS or not), and that endpoints are released.
 */
import net from 'node:net';
import tls from 'node:tls';

import type { LocalEndpoint, NetworkPath } from '../../src/transport/network.js';
import { connectTcp } from '../../src/transport/network.js';

/** One endpoint() call. */
export interface EndpointRecord {
  address: string;
  port: number;
  /** Local port of the forwarder serving it. */
  localPort: number;
  /** Connections accepted by the forwarder. */
  connections: number;
  /** First byte each connection sent (0x16 = TLS handshake). */
  firstBytes: number[];
  released: boolean;
}

/** A NetworkPath that forwards `alias` (a name that does not resolve) to `realAddress`. */
export class RecordingPath implements NetworkPath {
  readonly description = 'via recording forwarder';
  readonly records: EndpointRecord[] = [];
  private readonly servers = new Set<net.Server>();

  constructor(
    /** The address the lab config names; the only one this path accepts. */
    readonly alias: string,
    private readonly realAddress = '127.0.0.1',
  ) {}

  async connect(): Promise<never> {
    throw new Error('RecordingPath: FTP must use endpoint(), not connect()');
  }

  async endpoint(address: string, port: number): Promise<LocalEndpoint> {
    if (address !== this.alias) throw new Error(`RecordingPath: asked for ${address}:${port}, only ${this.alias} is reachable`);
    const record: EndpointRecord = { address, port, localPort: 0, connections: 0, firstBytes: [], released: false };
    const sockets = new Set<net.Socket>();
    const server = net.createServer((inbound) => {
      record.connections++;
      sockets.add(inbound);
      connectTcp(this.realAddress, port, 5_000, { host: 'test', protocol: 'forward' }).then(
        (outbound) => {
          sockets.add(outbound);
          // Attached together with the pipe: a 'data' listener alone would start the flow
          // before anyone forwards it, and the first chunk would be lost.
          inbound.once('data', (chunk: Buffer) => record.firstBytes.push(chunk[0] ?? -1));
          inbound.pipe(outbound).pipe(inbound);
          const end = () => {
            inbound.destroy();
            outbound.destroy();
          };
          inbound.once('close', end).once('error', end);
          outbound.once('close', end).once('error', end);
        },
        () => inbound.destroy(),
      );
    });
    this.servers.add(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    record.localPort = (server.address() as net.AddressInfo).port;
    this.records.push(record);
    return {
      host: '127.0.0.1',
      port: record.localPort,
      release: async () => {
        record.released = true;
        this.servers.delete(server);
        server.close(); // refuses new connections; live ones finish on their own
      },
    };
  }

  /** Endpoints asked for `port` (the control port) and for anything else (data ports). */
  split(controlPort: number): { control: EndpointRecord[]; data: EndpointRecord[] } {
    return {
      control: this.records.filter((r) => r.port === controlPort),
      data: this.records.filter((r) => r.port !== controlPort),
    };
  }

  /** Closes forwarders that were never released (test cleanup). */
  async dispose(): Promise<void> {
    for (const server of this.servers) server.close();
    this.servers.clear();
  }
}

/**
 * A NetworkPath whose endpoints speak TLS and forward the decrypted bytes to the real port:
 * an implicit-FTPS server made of a plain FTP server, for testing the client's implicit mode
 * (control and data connections) against vsftpd.
 */
export class TlsTerminatingPath implements NetworkPath {
  readonly description = 'via TLS terminator';
  /** TLS handshakes completed per endpoint, in the order endpoints were asked. */
  readonly records: Array<{ address: string; port: number; handshakes: number }> = [];
  private readonly servers = new Set<tls.Server>();

  constructor(
    readonly alias: string,
    private readonly credentials: { cert: string; key: string },
    private readonly realAddress = '127.0.0.1',
  ) {}

  async connect(): Promise<never> {
    throw new Error('TlsTerminatingPath: FTP must use endpoint(), not connect()');
  }

  async endpoint(address: string, port: number): Promise<LocalEndpoint> {
    if (address !== this.alias) throw new Error(`TlsTerminatingPath: asked for ${address}:${port}, only ${this.alias} is reachable`);
    const record = { address, port, handshakes: 0 };
    const server = tls.createServer(this.credentials, (secure) => {
      record.handshakes++;
      secure.pause(); // nothing may flow before the plain side is connected
      connectTcp(this.realAddress, port, 5_000, { host: 'test', protocol: 'forward' }).then(
        (plain) => {
          secure.pipe(plain).pipe(secure);
          secure.resume();
          const end = () => {
            secure.destroy();
            plain.destroy();
          };
          secure.once('close', end).once('error', end);
          plain.once('close', end).once('error', end);
        },
        () => secure.destroy(),
      );
    });
    server.on('tlsClientError', () => {});
    this.servers.add(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.records.push(record);
    return {
      host: '127.0.0.1',
      port: (server.address() as net.AddressInfo).port,
      release: async () => {
        this.servers.delete(server);
        server.close();
      },
    };
  }

  dispose(): void {
    for (const server of this.servers) server.close();
    this.servers.clear();
  }
}
