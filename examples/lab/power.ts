/** The example board's power switch: QEMU's monitor (QMP), the way a PDU script would be used. */
import { QmpClient } from 'labwright';

/** Powers the example QEMU board on (it waits paused until then). */
export async function powerOnBoard(): Promise<void> {
  const socket = process.env.LAB_QEMU_QMP;
  if (!socket) throw new Error('LAB_QEMU_QMP is not set (the example suite\'s global setup sets it)');
  const qmp = await QmpClient.connect(socket, 'qemu-board');
  try {
    const status = await qmp.execute<{ status: string }>('query-status');
    if (status.status !== 'running') await qmp.execute('cont');
  } finally {
    qmp.close();
  }
}
