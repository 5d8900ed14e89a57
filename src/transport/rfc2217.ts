/**
 * RFC 2217 (Telnet Com Port Control): the serial line settings a client asks a terminal
 * server to apply to the port behind a telnet connection. Only the client side is here:
 * encoding the requests and reading the server's acknowledgements.
 */

/** The COM-PORT-OPTION telnet option code. */
export const COM_PORT_OPTION = 44;

/** Client-to-server commands (server replies add 100). */
export const ComPortCommand = {
  SET_BAUDRATE: 1,
  SET_DATASIZE: 2,
  SET_PARITY: 3,
  SET_STOPSIZE: 4,
  SET_CONTROL: 5,
} as const;

/** Serial line settings, as in the lab config. */
export interface SerialLineSettings {
  /** Bits per second. */
  baudRate: number;
  dataBits: 5 | 6 | 7 | 8;
  parity: 'none' | 'odd' | 'even' | 'mark' | 'space';
  stopBits: 1 | 1.5 | 2;
  flowControl: 'none' | 'software' | 'hardware';
}

const PARITY: Record<SerialLineSettings['parity'], number> = { none: 1, odd: 2, even: 3, mark: 4, space: 5 };
const STOP_BITS: Record<string, number> = { '1': 1, '2': 2, '1.5': 3 };
const FLOW: Record<SerialLineSettings['flowControl'], number> = { none: 1, software: 2, hardware: 3 };
/** SET-CONTROL values that switch BREAK on and off. */
export const BREAK_ON = 5;
export const BREAK_OFF = 6;

/** The subnegotiation payloads (command byte + value) that apply `settings`. */
export function comPortRequests(settings: SerialLineSettings): Buffer[] {
  const baud = Buffer.alloc(5);
  baud[0] = ComPortCommand.SET_BAUDRATE;
  baud.writeUInt32BE(settings.baudRate, 1);
  return [
    baud,
    Buffer.from([ComPortCommand.SET_DATASIZE, settings.dataBits]),
    Buffer.from([ComPortCommand.SET_PARITY, PARITY[settings.parity]]),
    Buffer.from([ComPortCommand.SET_STOPSIZE, STOP_BITS[String(settings.stopBits)]!]),
    Buffer.from([ComPortCommand.SET_CONTROL, FLOW[settings.flowControl]]),
  ];
}

/** `115200 8N1` style summary. */
export function describeLine(settings: SerialLineSettings): string {
  return `${settings.baudRate} ${settings.dataBits}${settings.parity[0]!.toUpperCase()}${settings.stopBits}${settings.flowControl === 'none' ? '' : ` ${settings.flowControl} flow`}`;
}

/** What the server acknowledged, decoded from its reply payload; undefined for replies we did not ask for. */
export function decodeComPortReply(payload: Buffer): { setting: string; value: number } | undefined {
  const command = payload[0];
  if (command === undefined || command < 100) return undefined;
  const names: Record<number, string> = { 101: 'baudRate', 102: 'dataBits', 103: 'parity', 104: 'stopBits', 105: 'control' };
  const setting = names[command];
  if (!setting) return undefined;
  const value = command === 101 && payload.length >= 5 ? payload.readUInt32BE(1) : (payload[1] ?? 0);
  return { setting, value };
}
