/** The seam between the shell session core and the protocols that carry a shell. */

/** Ctrl+C as typed on a terminal: SIGINT to the foreground job. */
export const CTRL_C = Buffer.from([0x03]);
/** Ctrl+\ as typed on a terminal: SIGQUIT, for programs that ignore SIGINT. */
export const CTRL_BACKSLASH = Buffer.from([0x1c]);

/** Callbacks a transport delivers shell output and closure through. */
export interface ShellSink {
  data(chunk: Buffer): void;
  /** The shell ended (exit, killed, connection lost). `reason` explains an unexpected end. */
  closed(reason?: Error): void;
}

/** A running shell as seen by {@link ShellSession}. */
export interface ShellChannel {
  /** Writes to the shell's input. Throws if the channel is closed. */
  write(data: string | Buffer): void;
  /**
   * Interrupts the foreground program. `attempt` counts from 0; transports escalate
   * (Ctrl+C, then stronger signals). Returns false when there is nothing stronger left.
   */
  interrupt(attempt: number): Promise<boolean> | boolean;
  /** Ends the shell and releases its channel or process. Idempotent, bounded. */
  close(): Promise<void>;
}

/** Opens shells of one kind on one host. */
export interface ShellTransport {
  /** Protocol name shown in errors and transcripts. */
  readonly protocol: 'ssh' | 'telnet' | 'local' | 'console';
  /** Host name shown in errors. */
  readonly host: string;
  /** Whether the shell runs on a terminal (pty): echo and output processing are turned off with stty. */
  readonly pty: boolean;
  /** What ends a typed line (`\n` for pty and pipes; telnet may need `\r\n`). */
  readonly newline: string;
  /**
   * The longest `open()` can take by the transport's own bounds (telnet: connect plus
   * login). The session waits at least this long before giving up on its own.
   */
  readonly maxOpenMs?: number;
  /**
   * Type a line break after the setup (and wait for it): the carrier answers terminal
   * queries (consoles), and an answer to a query made during setup may arrive after the
   * shell's line editor was turned off, as garbage at the start of the next line.
   */
  readonly syncAfterSetup?: boolean;
  /** Starts a shell; resolves once output can flow. The session applies its own bound. */
  open(sink: ShellSink): Promise<ShellChannel>;
}
