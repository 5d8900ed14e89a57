/**
 * Probing MaxSessions: open bare session channels (no shell, no command: nothing runs on
 * the device) until the server refuses one, then close them. ssh2 has no public call for
 * a bare session channel; this uses the same private calls as its own exec() (ssh2 1.17,
 * lib/client.js openChannel) and falls back to a default when they are missing.
 */
import type { Client as SshClient } from 'ssh2';

/** Highest number of sessions the probe opens: bounded, whatever the server allows. */
export const PROBE_LIMIT = 64;
/** Capacity assumed when the probe cannot run (OpenSSH's default MaxSessions). */
export const FALLBACK_CAPACITY = 10;

interface Channel {
  close(): void;
  resume(): unknown;
  once(event: 'close', listener: () => void): unknown;
}

interface PrivateClient {
  _chanMgr?: { add(handler: (error: Error | undefined, channel: Channel) => void): number };
  _protocol?: { session(localChannel: number, window: number, packetSize: number): void };
}

function openBareSession(client: SshClient, timeoutMs: number): Promise<Channel> {
  const internals = client as unknown as PrivateClient;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer to a session channel open')), timeoutMs);
    const handler = ((error: Error | undefined, channel: Channel) => {
      clearTimeout(timer);
      if (error) return reject(error);
      // A channel's 'close' fires only once its stream was consumed.
      channel.resume();
      resolve(channel);
    }) as ((error: Error | undefined, channel: Channel) => void) & { type?: string };
    handler.type = 'session';
    const local = internals._chanMgr!.add(handler);
    if (local === -1) {
      clearTimeout(timer);
      reject(new Error('no free local channel ids'));
      return;
    }
    internals._protocol!.session(local, 2 * 1024 * 1024, 32 * 1024);
  });
}

/**
 * Whether an error is the server refusing a channel (MaxSessions reached, forwarding
 * refused): ssh2 gives those the SSH_MSG_CHANNEL_OPEN_FAILURE reason code.
 */
export function isChannelOpenFailure(error: unknown): boolean {
  return error instanceof Error && typeof (error as Error & { reason?: unknown }).reason === 'number';
}

/**
 * The number of session channels the server accepts at once, between 1 and PROBE_LIMIT.
 * Must run before other session channels are opened on the connection.
 */
export async function probeMaxSessions(client: SshClient, timeoutMs = 5_000): Promise<{ capacity: number; probed: boolean }> {
  const internals = client as unknown as PrivateClient;
  if (typeof internals._chanMgr?.add !== 'function' || typeof internals._protocol?.session !== 'function') {
    return { capacity: FALLBACK_CAPACITY, probed: false };
  }
  // All opens go out at once (one round trip, not one per channel); the server answers
  // them in order, accepting up to its MaxSessions and refusing the rest.
  const attempts = await Promise.allSettled(Array.from({ length: PROBE_LIMIT }, () => openBareSession(client, timeoutMs)));
  const open = attempts.flatMap((attempt) => (attempt.status === 'fulfilled' ? [attempt.value] : []));
  const unexpected = attempts.find((attempt) => attempt.status === 'rejected' && !isChannelOpenFailure(attempt.reason));
  // Wait until the server confirmed every close, so the slots are free again.
  await Promise.all(
    open.map(
      (channel) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, timeoutMs);
          channel.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
          channel.close();
        }),
    ),
  );
  if (unexpected && open.length === 0) throw (unexpected as PromiseRejectedResult).reason;
  return { capacity: Math.max(1, open.length), probed: true };
}
