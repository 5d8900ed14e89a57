/**
 * The telnet wire format (RFC 854/855): an incremental decoder that separates data bytes
 * from commands, option negotiation and subnegotiation, and the encoding of outgoing data.
 * Every sequence may arrive split across chunks at any byte; the decoder keeps its state
 * between chunks. Negotiation policy lives in telnetStream.ts.
 */

/** Telnet command bytes (RFC 854). */
export const IAC = 0xff;
export const DONT = 0xfe;
export const DO = 0xfd;
export const WONT = 0xfc;
export const WILL = 0xfb;
export const SB = 0xfa;
export const GA = 0xf9;
export const EL = 0xf8;
export const EC = 0xf7;
export const AYT = 0xf6;
export const AO = 0xf5;
export const IP = 0xf4;
export const BRK = 0xf3;
export const DM = 0xf2;
export const NOP = 0xf1;
export const SE = 0xf0;

/** Option codes this library knows by name. */
export const Option = {
  BINARY: 0,
  ECHO: 1,
  SGA: 3,
  STATUS: 5,
  TIMING_MARK: 6,
  TTYPE: 24,
  NAWS: 31,
  TSPEED: 32,
  LFLOW: 33,
  LINEMODE: 34,
  XDISPLOC: 35,
  OLD_ENVIRON: 36,
  AUTHENTICATION: 37,
  ENCRYPT: 38,
  NEW_ENVIRON: 39,
} as const;

/** TTYPE subnegotiation codes (RFC 1091). */
export const TTYPE_IS = 0;
export const TTYPE_SEND = 1;

/** A negotiation verb. */
export type Verb = typeof DO | typeof DONT | typeof WILL | typeof WONT;

const VERB_NAMES: Record<number, string> = { [DO]: 'DO', [DONT]: 'DONT', [WILL]: 'WILL', [WONT]: 'WONT' };
const OPTION_NAMES: Record<number, string> = Object.fromEntries(Object.entries(Option).map(([name, code]) => [code, name]));

/** `DO ECHO`, `WONT 200`: for logs and error messages. */
export function describeNegotiation(verb: Verb, option: number): string {
  return `${VERB_NAMES[verb] ?? verb} ${OPTION_NAMES[option] ?? option}`;
}

/** Receives what the decoder found, in stream order. */
export interface TelnetEvents {
  /** Data bytes, with `IAC IAC` turned into 0xFF (and `CR NUL` into CR outside binary mode). */
  data(bytes: Buffer): void;
  /** A command other than negotiation and subnegotiation (IP, AYT, NOP, GA, DM, ...). */
  command(code: number): void;
  negotiate(verb: Verb, option: number): void;
  /** A complete subnegotiation `IAC SB option payload IAC SE`, payload unescaped. */
  subnegotiation(option: number, payload: Buffer): void;
}

/** Longest subnegotiation payload kept; the rest is dropped (no option we answer needs more). */
const MAX_SUBNEGOTIATION = 4096;

type DecoderState = 'data' | 'iac' | 'verb' | 'sb-option' | 'sb' | 'sb-iac';

/**
 * Incremental telnet decoder. Events are delivered synchronously while a chunk is
 * decoded, so a negotiation that switches binary mode on applies to the very next byte.
 */
export class TelnetDecoder {
  private state: DecoderState = 'data';
  private verb: Verb = DO;
  private sbOption = 0;
  private sbPayload: number[] = [];
  /** The previous data byte was a CR received outside binary mode: a following NUL is padding. */
  private afterCr = false;

  /**
   * @param binary whether the peer currently sends in binary mode (RFC 856); outside it a
   *   `CR NUL` pair means a bare CR and the NUL is dropped.
   */
  constructor(private readonly binary: () => boolean) {}

  /** Decodes the next chunk, calling `events` for everything it completes. */
  push(chunk: Buffer, events: TelnetEvents): void {
    // Data bytes are compacted into `out` (never longer than the chunk) and handed out as
    // views of it, so 0xFF-dense data costs no allocation per byte.
    const out = Buffer.allocUnsafe(chunk.length);
    let length = 0;
    let emitted = 0;
    const flushData = () => {
      if (length === emitted) return;
      events.data(out.subarray(emitted, length));
      emitted = length;
    };
    // Only a negotiation can switch binary mode, so the flag is re-read after each one.
    let binary = this.binary();
    // Positions of the next IAC and CR at or after the cursor; -1: none left in the chunk.
    let nextIac = chunk.indexOf(IAC);
    let nextCr = chunk.indexOf(0x0d);

    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!;
      switch (this.state) {
        case 'data': {
          if (byte === IAC) {
            this.state = 'iac';
            break;
          }
          if (this.afterCr) {
            this.afterCr = false;
            // CR NUL → CR outside binary mode (RFC 854); the NUL is dropped, even across chunks.
            if (byte === 0 && !binary) break;
          }
          if (byte === 0x0d) {
            out[length++] = byte;
            this.afterCr = !binary;
            break;
          }
          // Copy up to the next byte that needs a look: IAC, or CR outside binary mode.
          if (nextIac !== -1 && nextIac <= i) nextIac = chunk.indexOf(IAC, i + 1);
          let stop = nextIac === -1 ? chunk.length : nextIac;
          if (!binary) {
            if (nextCr !== -1 && nextCr <= i) nextCr = chunk.indexOf(0x0d, i + 1);
            if (nextCr !== -1 && nextCr < stop) stop = nextCr;
          }
          if (stop - i === 1) out[length++] = byte;
          else length += chunk.copy(out, length, i, stop);
          i = stop - 1;
          break;
        }
        case 'iac':
          this.state = 'data';
          if (byte === IAC) {
            // An escaped 0xFF data byte; it is never the CR of a CR NUL pair.
            this.afterCr = false;
            out[length++] = IAC;
          } else if (byte === DO || byte === DONT || byte === WILL || byte === WONT) {
            this.verb = byte;
            this.state = 'verb';
          } else if (byte === SB) {
            this.state = 'sb-option';
          } else {
            flushData();
            events.command(byte);
          }
          break;
        case 'verb':
          this.state = 'data';
          flushData();
          events.negotiate(this.verb, byte);
          binary = this.binary();
          break;
        case 'sb-option':
          this.sbOption = byte;
          this.sbPayload = [];
          this.state = 'sb';
          break;
        case 'sb':
          if (byte === IAC) this.state = 'sb-iac';
          else if (this.sbPayload.length < MAX_SUBNEGOTIATION) this.sbPayload.push(byte);
          break;
        case 'sb-iac':
          if (byte === IAC) {
            if (this.sbPayload.length < MAX_SUBNEGOTIATION) this.sbPayload.push(IAC);
            this.state = 'sb';
          } else if (byte === SE) {
            this.state = 'data';
            flushData();
            events.subnegotiation(this.sbOption, Buffer.from(this.sbPayload));
            this.sbPayload = [];
          } else {
            // A peer that forgot `IAC SE`: drop the subnegotiation and resynchronise on this
            // command instead of swallowing the rest of the stream.
            this.sbPayload = [];
            this.state = 'iac';
            i--;
          }
          break;
      }
    }
    flushData();
  }
}

/** `bytes` with every 0xFF doubled, as data and subnegotiation payloads require. */
export function escapeIac(bytes: Buffer): Buffer {
  if (!bytes.includes(IAC)) return bytes;
  const out: number[] = [];
  for (const byte of bytes) {
    out.push(byte);
    if (byte === IAC) out.push(IAC);
  }
  return Buffer.from(out);
}

/**
 * Encodes outgoing data: 0xFF as `IAC IAC`, and outside binary mode a CR not followed by
 * LF (within this write) as `CR NUL` (RFC 854). In binary mode bytes go as they are.
 */
export function encodeData(data: Buffer, binary: boolean): Buffer {
  if (binary || !data.includes(0x0d)) return escapeIac(data);
  const out: number[] = [];
  for (let i = 0; i < data.length; i++) {
    const byte = data[i]!;
    out.push(byte);
    if (byte === 0x0d && data[i + 1] !== 0x0a) out.push(0);
  }
  return escapeIac(Buffer.from(out));
}

/** `IAC verb option`. */
export function negotiation(verb: Verb, option: number): Buffer {
  return Buffer.from([IAC, verb, option]);
}

/** `IAC SB option payload IAC SE`, payload escaped. */
export function subnegotiation(option: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([IAC, SB, option]), escapeIac(payload), Buffer.from([IAC, SE])]);
}
