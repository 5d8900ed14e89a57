/** The power layer's vocabulary: actions, states, and what every driver offers. */

/** What a power controller can be asked: switch on, switch off, cycle, or report the state. */
export type PowerAction = 'on' | 'off' | 'cycle' | 'state';

/** An outlet's power: `unknown` when the driver cannot tell. */
export type PowerState = 'on' | 'off' | 'unknown';

/** The outlet an action is for, and the lab host behind it (`{outlet}` and `{host}` in templates). */
export interface OutletRef {
  host: string;
  outlet: string | undefined;
}

/**
 * One kind of power controller. Each call is bounded by `signal` (the PDU's timeout and the
 * caller's own signal); failures throw with what went wrong in the driver's own terms, and
 * the PDU adds the host, driver and outlet.
 */
export interface PowerDriver {
  readonly kind: 'qemu' | 'command' | 'http';
  on(ref: OutletRef, signal: AbortSignal): Promise<void>;
  off(ref: OutletRef, signal: AbortSignal): Promise<void>;
  /** A cycle of the driver's own; without one the PDU switches off, waits `cycleDelay`, and switches on. */
  cycle?(ref: OutletRef, signal: AbortSignal): Promise<void>;
  /** Without one the state is `unknown`. */
  state?(ref: OutletRef, signal: AbortSignal): Promise<PowerState>;
}

/** What a command of the command driver reported. */
export interface PowerCommandOutcome {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** Why it did not complete (timed out, aborted, could not start), if it did not. */
  error: string | undefined;
}

/** Runs the command driver's programs: on the runner, or on a lab host through its exec. */
export interface PowerCommandRunner {
  /** Where the commands run, for messages: `the runner`, `bastion`. */
  readonly where: string;
  run(command: string, options: { timeout: number; signal: AbortSignal; env: Record<string, string> }): Promise<PowerCommandOutcome>;
}
