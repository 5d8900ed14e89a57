/**
 * The one place transfers are reported: every `put()` and `get()` of every host kind runs
 * as a step and emits one `transfer` lab event when it ends, with its bytes or its error.
 * Strategies below only move and verify files.
 */
import type { TransferResult } from '../transfer/types.js';
import { type ErrorProtocol, LabwrightError, messageOf, TransferError } from '../util/errors.js';
import type { HostContext } from './events.js';

/** One transfer as the host layer reports it. */
export interface TransferReport {
  host: string;
  direction: 'put' | 'get';
  /** Transfer method, or `copy` on the local host. */
  method: string;
  local: string;
  remote: string;
}

/** Runs `body` as the transfer's step and reports its outcome as a `transfer` event. */
export function reportTransfer(context: HostContext, report: TransferReport, body: () => Promise<TransferResult>): Promise<TransferResult> {
  const { host, direction, method, local, remote } = report;
  const [source, destination] = direction === 'put' ? [local, remote] : [remote, local];
  const started = Date.now();
  const emit = (outcome: { bytes: number; durationMs: number } | { error: string }) =>
    context.events.emit({ type: 'transfer', time: Date.now(), host, direction, method, local, remote, durationMs: Date.now() - started, ...outcome });
  return context.step(`${host}: ${direction} ${source} → ${destination} (${method})`, async () => {
    try {
      const result = await body();
      emit({ bytes: result.bytes, durationMs: result.durationMs });
      return result;
    } catch (error) {
      emit({ error: messageOf(error) });
      if (error instanceof LabwrightError) throw error;
      const protocol: ErrorProtocol = method === 'sftp' || method === 'scp' || method === 'ftp' || method === 'nc' ? method : 'local';
      throw new TransferError(`${direction} of ${source} failed: ${messageOf(error)}.`, { host, protocol, cause: error });
    }
  });
}
