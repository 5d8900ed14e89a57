/**
 * Telnet shells: one TCP connection (through the host's {@link NetworkPath}, so hops
 * work) per shell, a login dialogue, then the byte stream handed to the session core.
 * Telnet has no channels: the shell and its connection live and die together, so a
 * closed connection reports the shell closed and the session rebuilds on next use.
 */
import type { TelnetOptions } from '../config/schema.js';
import type { NetworkPath } from '../transport/network.js';
import { IP } from '../transport/telnetCodec.js';
import { TelnetStream } from '../transport/telnetStream.js';
import { ConnectionError, messageOf } from '../util/errors.js';
import { registerSecret } from '../util/secrets.js';
import { ClosedBeforeTypingError, telnetLogin } from './telnetLogin.js';
import { CTRL_BACKSLASH, CTRL_C, type ShellChannel, type ShellSink, type ShellTransport } from './transport.js';

/** What a {@link TelnetShellTransport} needs to reach and log in to a device. */
export interface TelnetShellOptions {
  /** Lab host name, for errors. */
  host: string;
  /** Address as seen from the end of `path`. */
  address: string;
  /** How TCP reaches the device (direct or through hops). */
  path: NetworkPath;
  telnet: TelnetOptions;
  user: string;
  /** Password answered to the password prompt; a device that asks while this is unset is an auth error. */
  password?: string | undefined;
}

/** Opens logged-in shells on a telnet device. */
export class TelnetShellTransport implements ShellTransport {
  readonly protocol = 'telnet' as const;
  readonly host: string;
  readonly pty = true;
  /**
   * A bare LF. We send in BINARY mode (inetutils telnetd agrees at once), where telnetd
   * passes bytes to the pty unchanged: CR LF would reach the shell as two line ends (the
   * pty maps CR to NL), so an expect response would also answer the next prompt with an
   * empty line. Without BINARY, telnetd turns CR LF into CR; a bare LF is passed on as
   * is. LF ends a line in canonical mode whatever the tty's ICRNL says, so it is the one
   * line end that means exactly one line in both modes (login and password prompts too).
   */
  readonly newline = '\n';

  /** Connect plus login, the longest open() can take by its own bounds. */
  get maxOpenMs(): number {
    return this.options.telnet.connectTimeout + this.options.telnet.loginTimeout;
  }

  constructor(private readonly options: TelnetShellOptions) {
    this.host = options.host;
    registerSecret(options.password);
  }

  async open(sink: ShellSink): Promise<ShellChannel> {
    const { address, path, telnet: opts, user, password } = this.options;
    const endpoint = `${address}:${opts.port}${path.description === 'direct' ? '' : ` (${path.description})`}`;
    let telnet: TelnetStream;
    let rest: Buffer;
    // A device that closes a fresh connection before anything was typed (BusyBox telnetd now
    // and then, under load) gets one more try: no login attempt was used.
    for (let attempt = 1; ; attempt++) {
      const stream = await path.connect(address, opts.port, opts.connectTimeout, { host: this.host, protocol: 'telnet' });
      telnet = new TelnetStream(stream, { termType: opts.termType, cols: opts.cols, rows: opts.rows });
      try {
        rest = await telnetLogin(telnet, { host: this.host, endpoint, user, password, options: opts, newline: this.newline });
        break;
      } catch (error) {
        telnet.destroy();
        if (!(error instanceof ClosedBeforeTypingError) || attempt >= 2) throw error;
      }
    }
    const channel = new TelnetShellChannel(telnet);
    telnet.attach({
      data: (bytes) => sink.data(bytes),
      closed: (error) =>
        sink.closed(
          new ConnectionError(error ? 'reset' : 'closed', `the telnet connection to ${endpoint} ${error ? `failed: ${messageOf(error)}` : 'was closed'}`, {
            host: this.host,
            protocol: 'telnet',
            unprefixed: true,
          }),
        ),
    });
    if (rest.length > 0) sink.data(rest);
    return channel;
  }
}

class TelnetShellChannel implements ShellChannel {
  private closing: Promise<void> | undefined;

  constructor(private readonly telnet: TelnetStream) {}

  write(data: string | Buffer): void {
    this.telnet.write(data);
  }

  /** Ctrl+C, then telnet IP (telnetd signals the pty itself), then Ctrl+\ (SIGQUIT). */
  interrupt(attempt: number): boolean {
    if (this.telnet.closed) return false;
    switch (attempt) {
      case 0:
        this.telnet.write(CTRL_C);
        return true;
      case 1:
        this.telnet.command(IP);
        return true;
      case 2:
        this.telnet.write(CTRL_BACKSLASH);
        return false;
      default:
        return false;
    }
  }

  close(): Promise<void> {
    this.closing ??= this.telnet.close(2_000);
    return this.closing;
  }
}
