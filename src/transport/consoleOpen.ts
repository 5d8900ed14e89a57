/**
 * Opening a host's console from its configuration: raw TCP or telnet through the host's
 * network path (so hops work), or a local serial device.
 */
import type { ConsoleOptions } from '../config/schema.js';
import { type ConsoleStream, ConsoleStreamBase, RawConsoleStream } from './consoleStream.js';
import type { NetworkPath } from './network.js';
import { describeLine } from './rfc2217.js';
import { openSerialConsole } from './serialConsole.js';
import { TelnetStream } from './telnetStream.js';

/** Where a console is: the endpoint key used for the runner-wide lock, and a description. */
export function consoleEndpoint(options: ConsoleOptions, defaultAddress: string): { key: string; description: string } {
  if (options.transport === 'serial') return { key: `serial:${options.path}`, description: `serial ${options.path}` };
  const address = options.address ?? defaultAddress;
  return { key: `${options.transport}:${address}:${options.port}`, description: `${options.transport} ${address}:${options.port}` };
}

/**
 * Opens the console described by `options` for host `host`. Errors name the host, the
 * console and the cause. `onNote` hears what the carrier reports (RFC 2217 settings the
 * terminal server applied), for the console log.
 */
export async function openConsoleStream(
  host: string,
  options: ConsoleOptions,
  path: NetworkPath,
  defaultAddress: string,
  onNote?: (text: string) => void,
): Promise<ConsoleStream> {
  if (options.transport === 'serial') return openSerialConsole(host, { ...options, path: options.path! }, options.connectTimeout);
  const address = options.address ?? defaultAddress;
  const port = options.port!;
  const socket = await path.connect(address, port, options.connectTimeout, { host, protocol: 'console' });
  // Read after connecting: a hop path knows its chain once it was built.
  const via = path.description === 'direct' ? '' : ` ${path.description}`;
  if (options.transport === 'tcp') return new RawConsoleStream(socket, `tcp ${address}:${port}${via}`);
  const telnet = new TelnetStream(socket, {
    termType: 'vt100',
    cols: 80,
    rows: 24,
    comPort: options.rfc2217 ? options : undefined,
    onComPortAck: (setting, value) => onNote?.(`RFC 2217: the terminal server set ${setting} ${value}`),
  });
  return new TelnetConsoleStream(telnet, `telnet ${address}:${port}${via}${options.rfc2217 ? ` (RFC 2217 ${describeLine(options)} if offered)` : ''}`);
}

/** A terminal-server port over telnet: IAC handling, negotiation and RFC 2217 in {@link TelnetStream}. */
class TelnetConsoleStream extends ConsoleStreamBase implements ConsoleStream {
  constructor(
    readonly telnet: TelnetStream,
    readonly description: string,
  ) {
    super();
    telnet.attach({ data: (bytes) => this.deliver(bytes), closed: (error) => this.finish(error) });
  }

  write(data: string | Buffer): void {
    this.telnet.write(data);
  }

  async sendBreak(): Promise<boolean> {
    await this.telnet.sendBreak();
    return true;
  }

  async close(): Promise<void> {
    await this.telnet.close(1_000);
    this.finish();
  }
}
