/**
 * Port forwards and reverse SFTP shares of a remote host, tracked so that closing the host
 * stops every one of them.
 */
import { Share, type ShareOptions } from '../share/share.js';
import type { RemoteRunner } from '../transfer/types.js';
import type { ConnectionManager } from '../transport/connectionManager.js';
import { type Forward, type IncomingHandler, pipeToLocal, startLocalForward, startRemoteForward } from '../transport/forwarding.js';
import type { HostContext } from './events.js';

/** Options of a local forward. */
export interface LocalForwardOptions {
  /** Runner port to listen on (127.0.0.1); default: a free one. */
  localPort?: number;
}

/** Options of a remote forward. */
export interface RemoteForwardOptions {
  /** Address the device listens on; default 127.0.0.1 (only the device itself can connect). */
  bindAddress?: string;
  /** Device port; default: a free one chosen by the device. */
  remotePort?: number;
}

/** What forwards and shares need from their host. */
export interface RemoteForwardsDeps {
  host: string;
  context: HostContext;
  connections: ConnectionManager;
  runner: RemoteRunner;
  commandTimeout: () => number;
}

export class RemoteForwards {
  private readonly forwards = new Set<Forward>();
  private readonly shares = new Set<Share>();

  constructor(private readonly deps: RemoteForwardsDeps) {}

  async local(address: string, port: number, options: LocalForwardOptions = {}): Promise<Forward> {
    return this.track(await startLocalForward(this.deps.connections, this.deps.host, address, port, options.localPort ?? 0));
  }

  remote(localAddress: string, localPort: number, options: RemoteForwardOptions = {}): Promise<Forward> {
    return this.remoteTo(pipeToLocal(localAddress, localPort), options);
  }

  async remoteTo(handler: IncomingHandler, options: RemoteForwardOptions = {}): Promise<Forward> {
    return this.track(await startRemoteForward(this.deps.connections, this.deps.host, { ...options, handler }));
  }

  share(localDir: string, options: ShareOptions = {}): Promise<Share> {
    const { host, context } = this.deps;
    return context.step(`${host}: share ${localDir}${options.readOnly ? ' (read-only)' : ''}`, async () => {
      const started: { share?: Share } = {};
      const share = await Share.start(localDir, options, {
        host,
        runner: this.deps.runner,
        forward: (handler, remotePort) => this.remoteTo(handler, remotePort === undefined ? {} : { remotePort }),
        commandTimeout: this.deps.commandTimeout(),
        onEvent: (event, detail) => {
          if (event === 'closed' && started.share) this.shares.delete(started.share);
          context.events.emit({ type: 'connection', time: Date.now(), host, protocol: 'share', event, detail });
        },
      });
      started.share = share;
      this.shares.add(share);
      return share;
    });
  }

  /** How many forwards (shares' own included) and shares are open. */
  get open(): { forwards: number; shares: number } {
    return { forwards: this.forwards.size, shares: this.shares.size };
  }

  /** Stops every share, then every forward. */
  async close(): Promise<void> {
    // Shares first: removing their keys needs the connection, and they own forwards.
    await Promise.allSettled([...this.shares].map((share) => share.stop()));
    this.shares.clear();
    await Promise.allSettled([...this.forwards].map((forward) => forward.close()));
    this.forwards.clear();
  }

  private track(forward: Forward): Forward {
    this.forwards.add(forward);
    return {
      port: forward.port,
      close: async () => {
        this.forwards.delete(forward);
        await forward.close();
      },
    };
  }
}
