/**
 * Ending an SSH session channel without disturbing the other channels of its connection.
 *
 * Dropbear (2022.83 measured) leaves the next session channel of a connection unanswered
 * when the client closes a channel whose process still runs: that channel's request fails
 * ("Unable to exec", "Unable to start subsystem") and ssh2 later reports "No response from
 * server". So the process is asked to end first (end of its input; the caller may add a
 * signal), and the channel is closed by us only when the server has not closed it within
 * the grace time.
 */
import type { ClientChannel } from 'ssh2';

import { sleep } from '../util/time.js';

/** Options of {@link endSessionChannel}. */
export interface EndChannelOptions {
  /** How long the process may take to exit before the channel is closed anyway (ms). */
  graceMs: number;
  /** Called before the input is ended, e.g. to send a signal to a shell. */
  beforeEnd?: () => void;
}

/** Ends `channel` (see the module comment); resolves once it closed, or after the grace time and a bounded close. */
export async function endSessionChannel(channel: ClientChannel, options: EndChannelOptions): Promise<void> {
  // 'close' fires only once the output was consumed: what is left is of no interest now.
  channel.resume();
  channel.stderr.resume();
  if (serverClosed(channel)) return;
  const closed = new Promise<void>((resolve) => channel.once('close', () => resolve()));
  try {
    options.beforeEnd?.();
    channel.end();
  } catch {
    // Already ended or closing.
  }
  if ((await Promise.race([closed.then(() => true), sleep(options.graceMs).then(() => false)])) === true) return;
  try {
    channel.close();
  } catch {}
  await Promise.race([closed, sleep(2_000)]);
}

/** Whether the server closed the channel already (ssh2 1.17 keeps this in `incoming.state`). */
function serverClosed(channel: ClientChannel): boolean {
  return (channel as unknown as { incoming?: { state?: string } }).incoming?.state === 'closed';
}
