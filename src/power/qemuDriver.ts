/**
 * The QEMU power driver: power control of a QEMU process through QMP on a unix socket.
 *
 * QEMU's monitor has no power switch, so this driver maps one onto what QMP offers:
 * - `off` = `stop`: the virtual CPUs halt; the board answers nothing (no console output, no
 *   network replies), like a board whose power was cut. Its memory is kept but never used
 *   again: `on` starts from a reset.
 * - `on` = `system_reset` then `cont`: a cold boot from the firmware. Already running: nothing.
 * - `cycle` = `system_reset` (then `cont` if the board was off): a hard reset, as a PDU's
 *   cycle with no off time.
 * - `state` from `query-status`: `running` and the states of a powered but stuck machine
 *   (`guest-panicked`, `internal-error`, `io-error`, `watchdog`, `suspended`, `debug`) are on;
 *   `paused`, `prelaunch` (started with `-S`) and `shutdown` (guest powered off under
 *   `-no-shutdown`) are off; no QEMU on the socket is off too.
 *
 * Not used: `quit` ends the QEMU process, and nothing could switch it on again through QMP;
 * `system_powerdown` only asks the guest to shut down (ACPI), which it may ignore. A soft
 * reboot is the device's own reboot command (host.reboot()).
 *
 * Each action opens its own QMP connection and closes it: QEMU serves one client per QMP
 * socket at a time, so a connection held open would lock everyone else out.
 */
import type { QemuPowerConfig } from '../config/schema.js';
import { ConnectionError, LabwrightError } from '../util/errors.js';
import { abortable, abortReason, formatDuration } from '../util/time.js';
import { QmpClient, type QmpEvent } from './qmp.js';
import type { OutletRef, PowerDriver, PowerState } from './types.js';

/** Longest wait for a QMP monitor's greeting (a free monitor greets at once). */
const GREETING_MS = 5_000;

const ON_STATES = new Set(['running', 'suspended', 'guest-panicked', 'internal-error', 'io-error', 'watchdog', 'debug']);
const OFF_STATES = new Set(['paused', 'prelaunch', 'shutdown']);

/** The power state a QMP run state means. */
export function powerStateOf(status: string): PowerState {
  if (ON_STATES.has(status)) return 'on';
  if (OFF_STATES.has(status)) return 'off';
  return 'unknown';
}

export class QemuDriver implements PowerDriver {
  readonly kind = 'qemu' as const;

  constructor(private readonly config: QemuPowerConfig) {}

  async state(ref: OutletRef, signal: AbortSignal): Promise<PowerState> {
    try {
      return await this.session(ref, signal, async (qmp) => powerStateOf(await this.status(qmp)));
    } catch (error) {
      // No QEMU on the socket: there is no machine, so it is off.
      if (error instanceof ConnectionError && error.kind === 'refused') return 'off';
      throw error;
    }
  }

  on(ref: OutletRef, signal: AbortSignal): Promise<void> {
    return this.session(ref, signal, async (qmp) => {
      if (powerStateOf(await this.status(qmp)) === 'on') return;
      await this.reset(qmp);
      await qmp.execute('cont', undefined, this.config.timeout);
    });
  }

  off(ref: OutletRef, signal: AbortSignal): Promise<void> {
    return this.session(ref, signal, async (qmp) => {
      if (powerStateOf(await this.status(qmp)) === 'off') return;
      await qmp.execute('stop', undefined, this.config.timeout);
    });
  }

  cycle(ref: OutletRef, signal: AbortSignal): Promise<void> {
    return this.session(ref, signal, async (qmp) => {
      await this.reset(qmp);
      if ((await this.status(qmp)) !== 'running') await qmp.execute('cont', undefined, this.config.timeout);
    });
  }

  private async status(qmp: QmpClient): Promise<string> {
    const result = await qmp.execute<{ status?: string }>('query-status', undefined, this.config.timeout);
    return result.status ?? 'unknown';
  }

  /**
   * `system_reset`, waiting for QEMU's RESET event: the reset is carried out by QEMU's main
   * loop after the command returns, and a `cont` sent before it would find a shut-down
   * machine still needing its reset.
   */
  private async reset(qmp: QmpClient): Promise<void> {
    const done: Promise<QmpEvent> = qmp.waitForEvent('RESET', this.config.timeout);
    done.catch(() => {});
    await qmp.execute('system_reset', undefined, this.config.timeout);
    await done;
  }

  /** Connects (one client per socket), runs `body`, and always disconnects; bounded by `signal`. */
  private async session<T>(ref: OutletRef, signal: AbortSignal, body: (qmp: QmpClient) => Promise<T>): Promise<T> {
    const { socket, timeout } = this.config;
    const aborted = () => new LabwrightError(`the QMP action was abandoned (${abortReason(signal)}).`);
    // The greeting comes at once from a free monitor: wait for it well within the action's bound,
    // so that a monitor held by someone else is reported as such rather than as a timeout.
    const greeting = Math.min(GREETING_MS, Math.max(100, Math.floor(timeout / 2)));
    const qmp = await abortable(this.connect(ref, socket, greeting), signal, aborted, (late) => late.close());
    try {
      return await abortable(body(qmp), signal, aborted);
    } finally {
      qmp.close();
    }
  }

  private async connect(ref: OutletRef, socket: string, timeout: number): Promise<QmpClient> {
    try {
      return await QmpClient.connect(socket, ref.host, timeout);
    } catch (error) {
      if (error instanceof ConnectionError) {
        if (error.kind !== 'refused') throw error;
        throw new ConnectionError('refused', `QEMU is not running: nothing answers on its QMP socket ${socket}.`, {
          host: ref.host,
          hint: 'The qemu driver switches a running QEMU on and off but cannot start one: start QEMU (with -no-shutdown, so a guest poweroff keeps the process), or use a command driver that starts it.',
          cause: error,
        });
      }
      // Connected, but no greeting: the monitor serves someone else (or QEMU hangs).
      throw new LabwrightError(`the QMP monitor at ${socket} accepted the connection but did not answer within ${formatDuration(timeout)}.`, {
        host: ref.host,
        hint: 'QEMU serves one client per QMP socket: if another program keeps it open, give labwright a -qmp socket of its own; otherwise QEMU is hung.',
        cause: error,
      });
    }
  }
}
