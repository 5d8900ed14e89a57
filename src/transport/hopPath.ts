/**
 * Reaching a host through an SSH bastion: TCP streams are direct-tcpip channels on the
 * bastion's own connection (which may itself go through a hop: chains of any depth), and
 * socket-only libraries get a cached 127.0.0.1 forwarder per destination, released when
 * its last user lets go. Errors of the bastion name the bastion.
 */
import type { Duplex } from 'node:stream';

import { ConnectionError, LabwrightError, messageOf } from '../util/errors.js';
import { formatDuration, withTimeout } from '../util/time.js';
import type { ConnectionManager } from './connectionManager.js';
import { forwardOut } from './forwarding.js';
import { LocalForwarder } from './localForwarder.js';
import { type ConnectContext, type LocalEndpoint, type NetworkPath } from './network.js';

interface CachedForward {
  forwarder: LocalForwarder;
  port: number;
  users: number;
}

export class HopPath implements NetworkPath {
  readonly description: string;
  private readonly forwards = new Map<string, Promise<CachedForward>>();

  /**
   * @param hopName the bastion's lab name
   * @param hop the bastion's connection manager
   * @param chain every hop from the runner outwards (for messages): `['bastion', 'mid']`
   */
  constructor(
    private readonly hopName: string,
    private readonly hop: ConnectionManager,
    chain: readonly string[],
  ) {
    this.description = `via ${chain.join(' → ')}`;
  }

  async connect(address: string, port: number, timeoutMs: number, context: ConnectContext): Promise<Duplex> {
    let connection;
    try {
      connection = await withTimeout(
        this.hop.ssh(),
        timeoutMs,
        () => new ConnectionError('timeout', `no connection to the hop within ${formatDuration(timeoutMs)}.`, { host: this.hopName, protocol: 'ssh' }),
      );
    } catch (error) {
      if (error instanceof LabwrightError) {
        const kind = error instanceof ConnectionError ? error.kind : 'closed';
        // Name the bastion: it is what is down, not the target.
        throw new ConnectionError(kind, `${error.detail.replace(/\.$/, '')}, and it is the hop to "${context.host}".`, {
          host: error.host ?? this.hopName,
          protocol: error.protocol ?? 'ssh',
          hint: error.hint ?? 'Check the bastion.',
          cause: error,
        });
      }
      throw error;
    }
    // Best effort: a hop that refuses ptys still forwards, just with Nagle's delays.
    await connection.makeInteractive().catch(() => {});
    try {
      return await withTimeout(forwardOut(connection.client, address, port), timeoutMs, () => new Error(`no answer within ${formatDuration(timeoutMs)}`));
    } catch (error) {
      const message = messageOf(error);
      const kind = /refused/i.test(message)
        ? 'refused'
        : /no answer|timed? ?out/i.test(message)
          ? 'timeout'
          : /unreachable|no route/i.test(message)
            ? 'unreachable'
            : 'closed';
      throw new ConnectionError(kind, `the hop "${this.hopName}" could not open ${address}:${port}: ${message}.`, {
        ...context,
        hint: `Check that ${address}:${port} is reachable from ${this.hopName} and that its sshd allows TCP forwarding (AllowTcpForwarding).`,
        cause: error,
      });
    }
  }

  async endpoint(address: string, port: number, context: ConnectContext): Promise<LocalEndpoint> {
    const key = `${address}:${port}`;
    let pending = this.forwards.get(key);
    if (!pending) {
      pending = (async () => {
        const forwarder = new LocalForwarder(() => this.connect(address, port, 15_000, context));
        return { forwarder, port: await forwarder.listen(), users: 0 };
      })();
      this.forwards.set(key, pending);
      pending.catch(() => this.forwards.delete(key));
    }
    const forward = await pending;
    forward.users++;
    let released = false;
    return {
      host: '127.0.0.1',
      port: forward.port,
      release: async () => {
        if (released) return;
        released = true;
        forward.users--;
        if (forward.users === 0 && this.forwards.get(key) === pending) {
          this.forwards.delete(key);
          await forward.forwarder.close();
        }
      },
    };
  }

  /** Destinations with a live local forwarder and how many users hold each (diagnostics). */
  async activeForwards(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const [key, pending] of this.forwards) out[key] = (await pending.catch(() => undefined))?.users ?? 0;
    return out;
  }

  /** Closes every cached forwarder (the host is being closed). */
  async close(): Promise<void> {
    const all = [...this.forwards.values()];
    this.forwards.clear();
    await Promise.allSettled(all.map(async (pending) => (await pending).forwarder.close()));
  }
}
