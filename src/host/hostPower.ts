/**
 * Power and lifecycle of a remote host: `power(action)`, `reboot({ hard, wait })`,
 * `waitUntilUp()`, the health check and recovery after a failed test.
 *
 * A reboot or a power off is an outage (see lifecycle.ts): calls made meanwhile fail at
 * once with "dut1 is rebooting", calls in flight end with the reason, and everything the
 * host holds is closed or rebuilt explicitly: its SSH connection is dropped, its shells
 * (default and named sessions) are closed and open again on their next command, its
 * forwards and shares are stopped (open them again afterwards), transfer and exec pools
 * are emptied.
 */
import type { RemoteHostConfig } from '../config/defineLab.js';
import type { RecoverFunction } from '../config/schema.js';
import type { Pdu } from '../power/pdu.js';
import type { PowerAction, PowerState } from '../power/types.js';
import type { SessionLifecycle, ShellSession } from '../session/shellSession.js';
import { HostUnavailableError, LabwrightError, messageOf } from '../util/errors.js';
import { anySignal, formatDuration, sleep } from '../util/time.js';
import type { HostContext, PowerEventKind } from './events.js';
import type { HostLifecycle } from './lifecycle.js';
import { type UpCheck, type UpTimings, waitUntilUp } from './waitUntilUp.js';

/** Options of `host.power()`. */
export interface PowerOptions {
  /** Stops waiting for the PDU early; the test's own signal always applies. */
  signal?: AbortSignal;
}

/** Options of `host.reboot()`. */
export interface RebootOptions {
  /** `true`: a power cycle through the host's power driver; `false` (default): its reboot command (`lifecycle.rebootCommand`) typed into a shell. */
  hard?: boolean;
  /** Wait until the host is back (default true); otherwise calls fail with "rebooting" until `waitUntilUp()`. */
  wait?: boolean;
  /** Bound (ms) on waiting until it is back; default `lifecycle.upTimeout`. */
  timeout?: number;
  /** Stops the reboot's waits early; the test's own signal always applies. */
  signal?: AbortSignal;
}

/** Options of `host.waitUntilUp()`. */
export interface WaitUntilUpOptions {
  /** Bound (ms); default `lifecycle.upTimeout`. */
  timeout?: number;
  signal?: AbortSignal;
}

/** What a reboot took, in ms. */
export interface RebootResult {
  hard: boolean;
  /** The power cycle (hard), or from typing the reboot command until the shell dropped (soft). */
  powerMs: number;
  /**
   * From then until the device answered again: its console's login prompt (hosts with a
   * console), else an SSH login (the first check of waitUntilUp); undefined without `wait`.
   */
  bootMs: number | undefined;
  /** From then until every check passed (SSH and the shell answering); undefined without `wait`. */
  reconnectMs: number | undefined;
  totalMs: number;
}

/**
 * What an outage closes, in steps: `connection` (the SSH connection, first, so that
 * everything on it ends at once), `device` (what needs the device up to stop cleanly:
 * forwards and shares), `rest` (everything still open: forwards and shares, the sessions'
 * shells, the transfer and exec pools, the connection).
 */
export type ReleaseStep = 'connection' | 'device' | 'rest';

/** What recovery after a failed test found and did. */
export type RecoveryReport =
  { outcome: 'not-configured' } | { outcome: 'healthy' } | { outcome: 'recovered'; method: string; failure: string; durationMs: number };

/** What the host gives its power control. */
export interface HostPowerDeps {
  config: RemoteHostConfig;
  /** The host's context (events, steps). */
  context: HostContext;
  /** The running test's own signal (not the host's outage signal: the outage's own work must go on). */
  testSignal: () => AbortSignal | undefined;
  lifecycle: HostLifecycle;
  pdu: Pdu | undefined;
  /** What must pass for the host to be up, in order. */
  upChecks: () => UpCheck[];
  /**
   * Closes, for an outage, one group of what the host holds (see {@link ReleaseStep});
   * resolves with what it closed, for the transcript.
   */
  release: (reason: Error, step: ReleaseStep) => Promise<string[]>;
  /**
   * The shell a soft reboot types its command into: a new shell (`drops`: the device going
   * down ends it), or a console's shell (the console stays connected through the reboot).
   */
  rebootShell: (onLifecycle: (event: SessionLifecycle, detail?: string) => void) => { shell: ShellSession; drops: boolean };
  /**
   * Watches the console (if the host has one) for its login prompt from the start of an
   * outage until the host is up; `start` resolves once the console is connected (or could not be).
   */
  bootWatch: { start(): Promise<void>; stop(): void };
  /** Runs the health check command (no events); resolves with why it failed, or undefined. */
  health: (signal: AbortSignal | undefined) => Promise<string | undefined>;
  /** The host itself, for a recovery function. */
  self: () => Parameters<RecoverFunction>[0];
}

export class HostPower {
  /** The outage operation under way (reboot, power), so that two never overlap. */
  private operation: string | undefined;

  constructor(private readonly deps: HostPowerDeps) {}

  private get host(): string {
    return this.deps.config.name;
  }

  private emit(event: PowerEventKind, text: string, error?: string): void {
    this.deps.context.events.emit({ type: 'power', time: Date.now(), host: this.host, event, text, ...(error ? { error } : {}) });
  }

  /** Switches the host's outlet, or reads its state. See RemoteHost.power(). */
  power(action: PowerAction, options: PowerOptions = {}): Promise<PowerState> {
    const signal = anySignal(options.signal, this.deps.testSignal());
    return this.deps.context.step(`${this.host}: power ${action}`, async (): Promise<PowerState> => {
      const { lifecycle } = this.deps;
      switch (action) {
        case 'state':
          return (await this.act('state', signal)) ?? 'unknown';
        case 'on': {
          const wasUp = lifecycle.state === 'up';
          if (!wasUp) await this.deps.bootWatch.start();
          await this.act('on', signal);
          if (!wasUp) lifecycle.enter('rebooting', 'booting after host.power("on")');
          return 'on';
        }
        case 'off':
          return this.exclusive('power off', async (): Promise<PowerState> => {
            await this.cut('off', 'powered off by host.power("off")', signal);
            return 'off';
          });
        case 'cycle':
          return this.exclusive('power cycle', async (): Promise<PowerState> => {
            await this.cut('rebooting', 'power-cycled by host.power("cycle")', signal);
            return 'on';
          });
      }
    });
  }

  /** Reboots the host and (by default) waits until it is back. See RemoteHost.reboot(). */
  reboot(options: RebootOptions = {}): Promise<RebootResult> {
    const hard = options.hard ?? false;
    const wait = options.wait ?? true;
    const signal = anySignal(options.signal, this.deps.testSignal());
    return this.deps.context.step(`${this.host}: reboot${hard ? ' (hard)' : ''}`, () =>
      this.exclusive(hard ? 'hard reboot' : 'reboot', async () => {
        const started = Date.now();
        if (hard) await this.cut('rebooting', 'power-cycled by host.reboot({ hard: true })', signal);
        else if (this.deps.lifecycle.state === 'off') throw this.deps.lifecycle.unavailable();
        else await this.softReboot(signal);
        const powerMs = Date.now() - started;
        if (!wait) return { hard, powerMs, bootMs: undefined, reconnectMs: undefined, totalMs: powerMs };
        const up = await this.waitUp(options.timeout, signal);
        const [first, last] = [Math.min(...Object.values(up.passedAt)), up.durationMs];
        return { hard, powerMs, bootMs: first, reconnectMs: last - first, totalMs: Date.now() - started };
      }),
    );
  }

  /** Waits until the host answers again. See RemoteHost.waitUntilUp(). */
  waitUntilUp(options: WaitUntilUpOptions = {}): Promise<UpTimings> {
    const signal = anySignal(options.signal, this.deps.testSignal());
    return this.deps.context.step(`${this.host}: wait until up`, async () => {
      if (this.deps.lifecycle.state === 'off') throw this.deps.lifecycle.unavailable();
      return this.waitUp(options.timeout, signal);
    });
  }

  /**
   * After a failed test: when the host has a recovery method and does not answer its health
   * check, recovers it (and checks again). Throws a HostUnavailableError when it cannot be
   * recovered; the host then stays `down`.
   */
  async recover(after: string, signal?: AbortSignal): Promise<RecoveryReport> {
    const { recover } = this.deps.config.lifecycle;
    if (recover === 'none') return { outcome: 'not-configured' };
    const failure = await this.checkHealth(signal);
    if (failure === undefined) {
      this.emit('health', `${this.host} passed its health check after ${after}`);
      return { outcome: 'healthy' };
    }
    const method = typeof recover === 'function' ? 'the recovery function' : recover;
    const started = Date.now();
    this.emit('health', `${this.host} did not pass its health check after ${after}: ${failure}`);
    this.emit('recovering', `recovering ${this.host} by ${method}`);
    try {
      if (recover === 'reboot') await this.reboot({ hard: false, signal });
      else if (recover === 'power-cycle') await this.reboot({ hard: true, signal });
      else await recover(this.deps.self());
      const still = await this.checkHealth(signal);
      if (still !== undefined) throw new LabwrightError(`its health check still fails: ${still}`);
    } catch (error) {
      const why = error instanceof LabwrightError ? error.detail : messageOf(error);
      this.emit('failed', `${this.host} could not be recovered by ${method}`, why);
      this.deps.lifecycle.enter('down', `recovery by ${method} after ${after} failed: ${why}`);
      throw new HostUnavailableError('down', `${this.host} could not be recovered by ${method} after ${after}: ${why}`, {
        host: this.host,
        hint: 'Check the device by hand (console, power) before running the tests that need it again.',
        cause: error,
      });
    }
    const durationMs = Date.now() - started;
    this.emit('recovered', `${this.host} recovered by ${method} in ${formatDuration(durationMs)}`);
    return { outcome: 'recovered', method, failure, durationMs };
  }

  /** Why the host is not healthy (not up, or the health command failing), or undefined. */
  private async checkHealth(signal: AbortSignal | undefined): Promise<string | undefined> {
    if (this.deps.lifecycle.state !== 'up') return this.deps.lifecycle.unavailable().detail;
    return this.deps.health(anySignal(signal, this.deps.testSignal()));
  }

  /** Runs `body` unless another outage operation is under way (then fails at once). */
  private async exclusive<T>(what: string, body: () => Promise<T>): Promise<T> {
    if (this.operation) {
      throw new HostUnavailableError('rebooting', `cannot start a ${what} of ${this.host}: a ${this.operation} is under way.`, {
        host: this.host,
        hint: 'Await the first one.',
      });
    }
    this.operation = what;
    try {
      return await body();
    } finally {
      this.operation = undefined;
    }
  }

  /** One driver action, reported in the transcript. */
  private async act(action: PowerAction, signal: AbortSignal | undefined): Promise<PowerState | undefined> {
    const pdu = this.requirePdu(action);
    const ref = { host: this.host, outlet: this.deps.config.power?.outlet };
    const started = Date.now();
    const what = `${action}: ${pdu.describe(ref)}`;
    try {
      const state = await pdu.act(action, ref, signal);
      this.emit('action', `${what}${state ? ` → ${state}` : ''} · ${formatDuration(Date.now() - started)}`);
      return state;
    } catch (error) {
      this.emit('action', what, messageOf(error));
      throw error;
    }
  }

  /**
   * Cuts the power (off or cycle): an outage begins, nothing new connects, what the host
   * holds is closed (fast: its connection goes first), then the driver acts.
   */
  private async cut(state: 'rebooting' | 'off', why: string, signal: AbortSignal | undefined): Promise<void> {
    const { lifecycle } = this.deps;
    this.requirePdu(state === 'off' ? 'off' : 'cycle');
    lifecycle.begin(state, why, `${this.host} was ${state === 'off' ? 'powered off' : 'power-cycled'} while this ran (${why})`);
    lifecycle.blockConnections(`it is being ${state === 'off' ? 'powered off' : 'power-cycled'}`);
    this.emit('outage', `${this.host} goes down: ${why}`);
    if (state === 'rebooting') await this.deps.bootWatch.start();
    // Calls in flight see the outage's reason before their connection goes, so that they
    // end saying why rather than as a shell or connection that died.
    await sleep(0);
    const reason = lifecycle.unavailable();
    const closed = await this.deps.release(reason, 'connection');
    try {
      await this.act(state === 'off' ? 'off' : 'cycle', signal);
    } catch (error) {
      lifecycle.enter('down', `the power ${state === 'off' ? 'off' : 'cycle'} failed (${messageOf(error)}); its power state is unknown`);
      throw error;
    } finally {
      // The rest is closed once the power is cut (a console shell still interrupting its command must not delay the cut).
      closed.push(...(await this.deps.release(reason, 'rest')));
      this.emit('closed', describeClosed(closed));
      lifecycle.allowConnections();
    }
  }

  /** The host's power controller; an error saying what could not be done without one. */
  private requirePdu(action: PowerAction): Pdu {
    if (this.deps.pdu) return this.deps.pdu;
    const what = { on: 'switched on', off: 'powered off', cycle: 'power-cycled', state: 'asked for its power state' }[action];
    throw new LabwrightError(`${this.host} has no power control, so it cannot be ${what}.`, {
      host: this.host,
      protocol: 'power',
      hint: "Add power: { pdu, outlet } (a PDU of the lab's pdus) or a driver of its own to the host in the lab config; reboot() without hard: true uses the device's own reboot command.",
    });
  }

  /**
   * The device's reboot command, typed into a new shell; the shell dropping is the device
   * going down (expected, not an error). A refusal (non-zero exit) leaves the host up. On a
   * console host the command goes to the console's shell, which stays connected: the board's
   * login prompt coming back on the console (one of the checks while waiting) shows it rebooted.
   */
  private async softReboot(signal: AbortSignal | undefined): Promise<void> {
    const { lifecycle, config } = this.deps;
    const { rebootCommand, downTimeout } = config.lifecycle;
    lifecycle.begin('rebooting', `host.reboot() typed ${JSON.stringify(rebootCommand)}`, `${this.host} was rebooted while this ran`);
    const reason = lifecycle.unavailable();
    const closed = await this.deps.release(reason, 'device');
    let dropped: ((detail: string) => void) | undefined;
    const gone = new Promise<string>((resolve) => (dropped = resolve));
    const { shell, drops } = this.deps.rebootShell((event, detail) => {
      if (event === 'lost') dropped?.(detail ?? 'the shell ended');
    });
    this.emit('outage', `${this.host} goes down: typing ${JSON.stringify(rebootCommand)} into ${drops ? 'a new shell' : 'its console shell'}`);
    await this.deps.bootWatch.start();
    const started = Date.now();
    try {
      const outcome = await shell.run(rebootCommand, { timeout: downTimeout, signal });
      if (outcome.exitCode !== null && outcome.exitCode !== 0) {
        lifecycle.end();
        this.deps.bootWatch.stop();
        throw new LabwrightError(
          `the reboot command ${JSON.stringify(rebootCommand)} failed with exit status ${outcome.exitCode}: ${JSON.stringify(outcome.output.trim().slice(-300))}.`,
          {
            host: this.host,
            hint: 'Check lifecycle.rebootCommand (it may need root: "sudo reboot"), or use reboot({ hard: true }).',
          },
        );
      }
      if (outcome.timedOut || outcome.aborted) throw new Error(outcome.error ?? 'the reboot command did not return');
      if (drops) {
        const left = downTimeout - (Date.now() - started);
        const detail = shell.alive ? await Promise.race([gone, sleep(Math.max(0, left), signal).then(() => undefined)]) : 'the shell ended';
        if (detail === undefined) {
          lifecycle.end();
          this.deps.bootWatch.stop();
          throw new LabwrightError(
            `${this.host} did not go down within ${formatDuration(downTimeout)} of ${JSON.stringify(rebootCommand)}: its shell still answers.`,
            {
              host: this.host,
              hint: 'Check that the reboot command reboots this device (lifecycle.rebootCommand), or raise lifecycle.downTimeout.',
            },
          );
        }
        this.emit('down', `${this.host} went down after ${formatDuration(Date.now() - started)} (${detail})`);
      } else {
        this.emit('down', `${this.host} took the reboot command; its console stays connected, the login prompt will show it is back`);
      }
      closed.push(...(await this.deps.release(reason, 'rest')));
      this.emit('closed', describeClosed(closed));
    } catch (error) {
      if (lifecycle.state === 'up') throw error;
      lifecycle.enter('down', `the soft reboot failed: ${messageOf(error)}`);
      closed.push(...(await this.deps.release(reason, 'rest')));
      this.emit('closed', describeClosed(closed));
      throw new LabwrightError(`the soft reboot failed: ${error instanceof LabwrightError ? error.detail : messageOf(error)}`, {
        host: this.host,
        hint: 'host.waitUntilUp() checks whether it is back; host.reboot({ hard: true }) power-cycles it.',
        cause: error,
      });
    } finally {
      await shell.close().catch(() => {});
    }
  }

  /** Waits until every check passes; the host is then up, or `down` when the bound runs out. */
  private async waitUp(timeout: number | undefined, signal: AbortSignal | undefined): Promise<UpTimings> {
    const { lifecycle, config, context } = this.deps;
    const bound = timeout ?? config.lifecycle.upTimeout;
    context.checkTimeout(this.host, bound);
    try {
      const timings = await waitUntilUp({
        host: this.host,
        checks: this.deps.upChecks(),
        timeout: bound,
        pollInterval: config.lifecycle.pollInterval,
        signal,
        progress: (text) => this.emit('waiting', text),
      });
      lifecycle.end();
      this.deps.bootWatch.stop();
      this.emit(
        'up',
        `${this.host} is up after ${formatDuration(timings.durationMs)} (${Object.entries(timings.passedAt)
          .map(([name, at]) => `${name} at ${formatDuration(at)}`)
          .join(', ')})`,
      );
      return timings;
    } catch (error) {
      lifecycle.enter('down', messageOf(error));
      this.deps.bootWatch.stop();
      this.emit('failed', `${this.host} is not back`, messageOf(error));
      throw error;
    }
  }
}

/** The transcript line of what an outage closed. */
function describeClosed(closed: readonly string[]): string {
  return `closed for the outage: ${closed.length > 0 ? closed.join(', ') : 'nothing was open'}`;
}
