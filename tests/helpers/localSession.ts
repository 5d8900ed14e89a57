/** Real local bash sessions for tests, with a tap on the raw bytes the shell printed. */
import { type ShellOptions, shellOptionsSchema } from '../../src/config/schema.js';
import { LocalShellTransport } from '../../src/session/localShell.js';
import { type SessionLifecycle, ShellSession } from '../../src/session/shellSession.js';
import type { ShellChannel, ShellSink, ShellTransport } from '../../src/session/transport.js';

/** Wraps a transport and keeps every byte the shell printed. */
export class TappedTransport implements ShellTransport {
  readonly raw: Buffer[] = [];
  constructor(private readonly inner: ShellTransport) {}
  get protocol() {
    return this.inner.protocol;
  }
  get host() {
    return this.inner.host;
  }
  get pty() {
    return this.inner.pty;
  }
  get newline() {
    return this.inner.newline;
  }
  open(sink: ShellSink): Promise<ShellChannel> {
    return this.inner.open({
      data: (chunk) => {
        this.raw.push(chunk);
        sink.data(chunk);
      },
      closed: (reason) => sink.closed(reason),
    });
  }
  /** Everything printed so far, as latin1 text (bytes preserved). */
  text(): string {
    return Buffer.concat(this.raw).toString('latin1');
  }
}

export function localSession(shell: Partial<ShellOptions> = {}) {
  const transport = new TappedTransport(new LocalShellTransport('local'));
  const lifecycle: SessionLifecycle[] = [];
  const sent: { text: string; secret: boolean }[] = [];
  const session = new ShellSession({
    transport,
    name: 'default',
    shell: shellOptionsSchema.parse({ recoveryTimeout: 1_500, ...shell }),
    observer: { lifecycle: (event) => lifecycle.push(event), sent: (text, secret) => sent.push({ text, secret }) },
  });
  return { session, transport, lifecycle, sent };
}
