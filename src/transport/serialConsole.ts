/**
 * A console on a local serial device (a USB serial adapter, `/dev/ttyS0`, a pseudo-terminal)
 * through the `serialport` package. The device is opened exclusively (a second opener,
 * in this or another process, gets "Cannot lock port"), so one owner is enforced by the OS.
 */
import { SerialPort } from 'serialport';

import { ConnectionError, messageOf } from '../util/errors.js';
import { formatDuration } from '../util/time.js';
import { type ConsoleStream, ConsoleStreamBase } from './consoleStream.js';
import { describeLine, type SerialLineSettings } from './rfc2217.js';

/** Where the device is and how its line is set. */
export interface SerialDeviceOptions extends SerialLineSettings {
  /** Device path, e.g. `/dev/ttyUSB0`. */
  path: string;
}

/** How long a BREAK is held. */
const BREAK_MS = 250;

/** Opens a serial device as a console stream; errors name the host and the device. */
export async function openSerialConsole(host: string, options: SerialDeviceOptions, timeoutMs: number): Promise<ConsoleStream> {
  const description = `serial ${options.path} ${describeLine(options)}`;
  const port = new SerialPort({
    path: options.path,
    baudRate: options.baudRate,
    dataBits: options.dataBits,
    parity: options.parity,
    stopBits: options.stopBits,
    rtscts: options.flowControl === 'hardware',
    xon: options.flowControl === 'software',
    xoff: options.flowControl === 'software',
    lock: true,
    autoOpen: false,
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      port.close(() => {});
      reject(new ConnectionError('timeout', `cannot open ${description}: no answer within ${formatDuration(timeoutMs)}.`, { host, protocol: 'console' }));
    }, timeoutMs);
    port.open((error) => {
      clearTimeout(timer);
      if (!error) return resolve();
      const message = messageOf(error);
      const busy = /lock|busy|resource temporarily unavailable/i.test(message);
      reject(
        new ConnectionError(busy ? 'refused' : 'closed', `cannot open ${description}: ${message}.`, {
          host,
          protocol: 'console',
          hint: busy
            ? 'Another program (or another labwright process) has the device open; close it (screen, minicom, picocom) or wait for that test to end.'
            : 'Check the device path and that this user may open it (the dialout group).',
          cause: error,
        }),
      );
    });
  });
  return new SerialConsoleStream(port, description);
}

class SerialConsoleStream extends ConsoleStreamBase implements ConsoleStream {
  private error: Error | undefined;

  constructor(
    private readonly port: SerialPort,
    readonly description: string,
  ) {
    super();
    port.on('data', (chunk: Buffer) => this.deliver(chunk));
    port.on('error', (error: Error) => (this.error ??= error));
    port.on('close', () => this.finish(this.error));
  }

  write(data: string | Buffer): void {
    if (this.closed || !this.port.isOpen) throw new Error('the serial device is closed');
    this.port.write(data);
  }

  /** BREAK by holding the line low for a moment (`set({ brk })`). */
  async sendBreak(): Promise<boolean> {
    if (this.closed) return false;
    const set = (brk: boolean) => new Promise<void>((resolve) => this.port.set({ brk }, () => resolve()));
    await set(true);
    await new Promise((resolve) => setTimeout(resolve, BREAK_MS));
    await set(false);
    return true;
  }

  async close(): Promise<void> {
    if (this.port.isOpen) await new Promise<void>((resolve) => this.port.close(() => resolve()));
    this.finish();
  }
}
