/**
 * Whether a host can be used now, and what happens to calls while it cannot. A reboot or a
 * power off is an outage: calls made meanwhile fail at once with a HostUnavailableError
 * naming the reason (they never wait and never hang), calls in flight end with that reason
 * (their signal fires), and, while the power is being cut, nothing of the host opens a new
 * connection (clean-up code would otherwise reconnect to a device that is going away).
 */
import { setMaxListeners } from 'node:events';

import type { ConnectContext, LocalEndpoint, NetworkPath } from '../transport/network.js';
import { HostUnavailableError } from '../util/errors.js';
import { formatDuration } from '../util/time.js';

/** `up`: usable; `rebooting`: a reboot or power on is under way; `off`: powered off; `down`: did not come back. */
export type HostState = 'up' | 'rebooting' | 'off' | 'down';

const HINTS: Record<Exclude<HostState, 'up'>, string> = {
  rebooting: 'Calls made during a reboot fail at once: await host.reboot() (or host.waitUntilUp() after host.power("on")) before using the host.',
  off: 'Power it on with host.power("on"), then wait with host.waitUntilUp().',
  down: 'Check the device: host.waitUntilUp() tries again, host.reboot({ hard: true }) power-cycles it.',
};

/** A controller whose signal every call on the host listens to at once (no listener-count warning). */
function sharedController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

export class HostLifecycle {
  private current: { state: HostState; why: string; since: number } = { state: 'up', why: '', since: Date.now() };
  private epoch = sharedController();
  private blocked: string | undefined;

  constructor(private readonly host: string) {}

  /** The host's state now. */
  get state(): HostState {
    return this.current.state;
  }

  /** Fires when the host goes away under the calls made before (a reboot, a power off): they end with its reason. */
  get signal(): AbortSignal {
    return this.epoch.signal;
  }

  /** Throws at once unless the host is up. */
  assertUsable(): void {
    const { state } = this.current;
    if (state !== 'up') throw this.unavailable();
  }

  /** The error for calls made now (when the host is not up). */
  unavailable(): HostUnavailableError {
    const { state, why, since } = this.current;
    const ago = formatDuration(Date.now() - since);
    const detail =
      state === 'rebooting'
        ? `${this.host} is rebooting (${why}, ${ago} ago).`
        : state === 'off'
          ? `${this.host} is powered off (${why}, ${ago} ago).`
          : `${this.host} did not come back: ${why}.`;
    return new HostUnavailableError(state === 'up' ? 'down' : state, detail, { host: this.host, hint: state === 'up' ? undefined : HINTS[state] });
  }

  /** An outage begins: new calls fail at once, and calls in flight are ended with `inFlight` as their reason. */
  begin(state: 'rebooting' | 'off', why: string, inFlight: string): void {
    this.current = { state, why, since: Date.now() };
    this.epoch.abort(new Error(inFlight));
  }

  /** The outage goes on in another state (off, then booting after power on) without ending calls again. */
  enter(state: Exclude<HostState, 'up'>, why: string): void {
    this.current = { state, why, since: Date.now() };
  }

  /** The host is usable again. */
  end(): void {
    this.current = { state: 'up', why: '', since: Date.now() };
    this.blocked = undefined;
    if (this.epoch.signal.aborted) this.epoch = sharedController();
  }

  /** No new connection to the host until {@link allowConnections} (the power is being cut). */
  blockConnections(why: string): void {
    this.blocked = why;
  }

  allowConnections(): void {
    this.blocked = undefined;
  }

  /** `path` refusing new connections while they are blocked; every argument passes through as given. */
  gate(path: NetworkPath): NetworkPath {
    const check = (context: ConnectContext) => {
      if (this.blocked !== undefined)
        throw new HostUnavailableError('rebooting', `no new connection to ${this.host}: ${this.blocked}.`, { host: context.host, protocol: context.protocol });
    };
    return {
      get description() {
        return path.description;
      },
      connect: async (...args: Parameters<NetworkPath['connect']>) => {
        check(args[3]);
        return path.connect(...args);
      },
      endpoint: async (...args: Parameters<NetworkPath['endpoint']>): Promise<LocalEndpoint> => {
        check(args[2]);
        return path.endpoint(...args);
      },
    };
  }
}
