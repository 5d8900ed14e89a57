/**
 * A power controller of the lab (a PDU, a QEMU monitor, a relay script) with its driver.
 * Actions to one PDU run one at a time, in the order asked, across every host on it and
 * every labwright process of the machine (many PDUs accept one control session at a
 * time), and each is bounded by the PDU's timeout, waiting included. Failures name the
 * host, the driver and the outlet.
 */
import { Mutex } from 'async-mutex';

import type { PduConfig } from '../config/schema.js';
import { AbortedError, LabwrightError, messageOf, PowerError, type PowerTarget } from '../util/errors.js';
import { abortable, abortReason, anySignal, formatDuration, sleep } from '../util/time.js';
import { acquirePduLock } from './pduLock.js';
import type { OutletRef, PowerAction, PowerDriver, PowerState } from './types.js';

/** Who holds the PDU now, for messages of those waiting. */
interface Holder {
  host: string;
  action: PowerAction;
  since: number;
}

/** Still waiting for the PDU when the bound ran out. */
class Waiting extends Error {
  constructor(
    readonly holder: Holder | undefined,
    readonly where: string,
  ) {
    super('waiting for the PDU');
  }
}

export interface PduOptions {
  /** Name in the lab config (`pdus`), or the host's name for a driver of its own. */
  name: string;
  /** Whether the driver is a host's own rather than a PDU shared by hosts. */
  own: boolean;
  config: PduConfig;
  driver: PowerDriver;
}

export class Pdu {
  readonly name: string;
  readonly config: PduConfig;
  private readonly driver: PowerDriver;
  private readonly own: boolean;
  private readonly queue = new Mutex();
  private holder: Holder | undefined;

  constructor(options: PduOptions) {
    this.name = options.name;
    this.own = options.own;
    this.config = options.config;
    this.driver = options.driver;
  }

  /** The driver kind: `qemu`, `command`, `http`. */
  get kind(): PowerDriver['kind'] {
    return this.driver.kind;
  }

  /** The outlet of `ref` on this PDU, for messages: `outlet 3 of PDU "pdu1" (http)`, `dut1's own qemu driver`. */
  describe(ref: OutletRef): string {
    const outlet = ref.outlet === undefined ? '' : `outlet ${ref.outlet} of `;
    return this.own ? `${outlet}${ref.host}'s own ${this.kind} driver` : `${outlet}PDU "${this.name}" (${this.kind})`;
  }

  /**
   * Runs one action for `ref` when the PDU is free, within the PDU's timeout (the wait
   * included). Resolves with the state for `state`, with nothing otherwise.
   */
  async act(action: PowerAction, ref: OutletRef, signal?: AbortSignal): Promise<PowerState | undefined> {
    const { timeout } = this.config;
    const bound = new AbortController();
    const timer = setTimeout(() => bound.abort(new Error(`the PDU's ${formatDuration(timeout)} timeout was exceeded`)), timeout);
    const all = anySignal(signal, bound.signal)!;
    const target: PowerTarget = { pdu: this.name, driver: this.kind, outlet: ref.outlet };
    const fail = (detail: string, hint: string, cause?: unknown) =>
      new PowerError(`${action} of ${this.describe(ref)} ${detail}`, target, { host: ref.host, hint, cause });
    try {
      return await this.serialised(action, ref, all);
    } catch (error) {
      if (error instanceof Waiting) {
        const by = error.holder
          ? `; it was busy with ${error.holder.action} for ${error.holder.host} for ${formatDuration(Date.now() - error.holder.since)}`
          : `; ${error.where}`;
        throw fail(
          `did not start: ${abortReason(all)}${by}.`,
          "Power actions to one PDU run one at a time (across workers too): raise the PDU's timeout, or find what holds it.",
        );
      }
      if (signal?.aborted) {
        throw new AbortedError(`${action} of ${this.describe(ref)} was abandoned: ${abortReason(signal)}.`, {
          host: ref.host,
          protocol: 'power',
          cause: error,
        });
      }
      const detail = (error instanceof LabwrightError ? error.detail : messageOf(error)).replace(/\.$/, '');
      const hint = error instanceof LabwrightError && error.hint ? error.hint : 'Check the PDU and its settings in the lab config.';
      if (bound.signal.aborted && detail === abortReason(bound.signal))
        throw fail(`did not finish: ${detail}.`, 'Check that the PDU answers, or raise its timeout in the lab config.', error);
      throw fail(`failed: ${detail}${bound.signal.aborted ? ` (${abortReason(bound.signal)})` : ''}.`, hint, error);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Waits for the PDU (this process's queue, then the machine-wide lock) and runs the action holding it. */
  private async serialised(action: PowerAction, ref: OutletRef, signal: AbortSignal): Promise<PowerState | undefined> {
    const release = await abortable(
      this.queue.acquire(),
      signal,
      () => new Waiting(this.holder, 'in this process'),
      (late) => late(),
    );
    let unlock: () => Promise<void>;
    try {
      unlock = await acquirePduLock(this.own ? `host-${this.name}` : `pdu-${this.name}`, signal);
    } catch (error) {
      release();
      if (signal.aborted) throw new Waiting(undefined, 'another labwright process (a Playwright worker) held it');
      throw error;
    }
    this.holder = { host: ref.host, action, since: Date.now() };
    // The caller is answered within the bound even if a driver overstays it; the PDU stays
    // held until the driver has really finished, so actions never overlap.
    const running = this.run(action, ref, signal).finally(async () => {
      this.holder = undefined;
      await unlock().catch(() => {});
      release();
    });
    return abortable(running, signal, () => new Error(abortReason(signal)));
  }

  private async run(action: PowerAction, ref: OutletRef, signal: AbortSignal): Promise<PowerState | undefined> {
    const { driver } = this;
    switch (action) {
      case 'on':
        return void (await driver.on(ref, signal));
      case 'off':
        return void (await driver.off(ref, signal));
      case 'state':
        return driver.state ? driver.state(ref, signal) : 'unknown';
      case 'cycle':
        if (driver.cycle) return void (await driver.cycle(ref, signal));
        await driver.off(ref, signal);
        await sleep(this.config.cycleDelay, signal);
        return void (await driver.on(ref, signal));
    }
  }
}
