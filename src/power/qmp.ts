/**
 * A QMP client (QEMU Machine Protocol, JSON over a unix socket): connect, leave
 * capabilities-negotiation mode, run commands (`cont`, `stop`, `system_reset`, `quit`,
 * `query-status`), and hear events (`RESET`, `SHUTDOWN`, `STOP`). Every call is bounded.
 * The QEMU power driver and the lab's QEMU board launcher use it.
 */
import net from 'node:net';

import { ConnectionError, LabwrightError, messageOf } from '../util/errors.js';
import { formatDuration } from '../util/time.js';

/** An asynchronous QMP event (`{ event, data, timestamp }`). */
export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
  command: string;
}

/** Pause before connecting again after QEMU reset a connection (its previous client still closing). */
const RESET_RETRY_MS = 100;

/** A connected QMP monitor. */
export class QmpClient {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly listeners = new Set<(event: QmpEvent) => void>();
  private closedError: Error | undefined;

  private constructor(
    private readonly socket: net.Socket,
    /** Who the monitor belongs to, for messages (`board1`). */
    readonly label: string,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (text: string) => this.receive(text));
    socket.on('error', (error) => (this.closedError ??= error));
    socket.on('close', () => this.fail(this.closedError ?? new Error('the QMP socket closed')));
  }

  /**
   * Connects to `socketPath` and negotiates capabilities, within `timeoutMs`. QEMU serves one
   * client per monitor socket and resets a connection that arrives while the previous one is
   * still closing: a reset is tried again, within the same bound.
   */
  static async connect(socketPath: string, label: string, timeoutMs = 5_000): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs;
    let socket: net.Socket;
    for (;;) {
      try {
        socket = await QmpClient.open(socketPath, label, timeoutMs, Math.max(1, deadline - Date.now()));
        break;
      } catch (error) {
        const reset = error instanceof ConnectionError && (error.cause as NodeJS.ErrnoException | undefined)?.code === 'ECONNRESET';
        if (!reset || Date.now() + RESET_RETRY_MS >= deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, RESET_RETRY_MS));
      }
    }
    const client = new QmpClient(socket, label);
    // The greeting comes first; qmp_capabilities then leaves negotiation mode.
    try {
      await client.execute('qmp_capabilities', undefined, Math.max(1, deadline - Date.now()));
    } catch (error) {
      // A monitor that never greets (held by another client) must not keep our socket open.
      client.close();
      throw error;
    }
    return client;
  }

  /** One connection attempt, bounded by `leftMs` (`timeoutMs` is the whole bound, for the message). */
  private static open(socketPath: string, label: string, timeoutMs: number, leftMs: number): Promise<net.Socket> {
    return new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(socketPath);
      const timer = setTimeout(() => {
        s.destroy();
        reject(
          new ConnectionError('timeout', `no answer from the QMP socket ${socketPath} within ${formatDuration(timeoutMs)}.`, {
            host: label,
            hint: 'Check that QEMU runs with -qmp unix:<path>,server=on,wait=off.',
          }),
        );
      }, leftMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(
          new ConnectionError(
            error.code === 'ECONNREFUSED' || error.code === 'ENOENT' ? 'refused' : 'closed',
            `cannot connect to the QMP socket ${socketPath}: ${error.code ?? error.message}.`,
            { host: label, hint: 'Check that QEMU is running with that -qmp socket.', cause: error },
          ),
        );
      });
    });
  }

  /** Runs a QMP command and resolves with its `return` value; rejects with QEMU's error or after `timeoutMs`. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = 5_000): Promise<T> {
    if (this.closedError || this.socket.destroyed) return Promise.reject(this.closed(command));
    const id = String(this.nextId++);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new LabwrightError(`QMP command ${command} got no answer within ${formatDuration(timeoutMs)}.`, {
            host: this.label,
            hint: 'QEMU may be hung; kill its process.',
          }),
        );
      }, timeoutMs);
      this.pending.set(id, { resolve: (value) => resolve(value as T), reject, timer, command });
      this.socket.write(`${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id })}\n`);
    });
  }

  /** Listens to QMP events; returns a function removing the listener. */
  onEvent(listener: (event: QmpEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Waits for the next event named `name`, within `timeoutMs`. */
  waitForEvent(name: string, timeoutMs: number): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stop();
        reject(new LabwrightError(`no QMP ${name} event within ${formatDuration(timeoutMs)}.`, { host: this.label }));
      }, timeoutMs);
      const stop = this.onEvent((event) => {
        if (event.event !== name) return;
        clearTimeout(timer);
        stop();
        resolve(event);
      });
    });
  }

  /** Whether the socket is still open. */
  get open(): boolean {
    return !this.closedError && !this.socket.destroyed;
  }

  close(): void {
    this.socket.destroy();
  }

  private closed(command: string): Error {
    return new ConnectionError('closed', `QMP command ${command}: the monitor connection is closed (${messageOf(this.closedError ?? 'closed')}).`, {
      host: this.label,
      hint: 'QEMU has exited, or the socket was closed.',
    });
  }

  private receive(text: string): void {
    this.buffer += text;
    for (let newline = this.buffer.indexOf('\n'); newline !== -1; newline = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (!line) continue;
      let message: { id?: string; return?: unknown; error?: { class: string; desc: string }; event?: string; data?: Record<string, unknown>; QMP?: unknown };
      try {
        message = JSON.parse(line);
      } catch {
        continue;
      }
      if (message.event) {
        for (const listener of [...this.listeners]) listener({ event: message.event, ...(message.data ? { data: message.data } : {}) });
        continue;
      }
      if (message.id === undefined) continue; // the greeting
      const pending = this.pending.get(String(message.id));
      if (!pending) continue;
      this.pending.delete(String(message.id));
      clearTimeout(pending.timer);
      if (message.error)
        pending.reject(new LabwrightError(`QMP command ${pending.command} failed: ${message.error.class}: ${message.error.desc}.`, { host: this.label }));
      else pending.resolve(message.return);
    }
  }

  private fail(error: Error): void {
    this.closedError ??= error;
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer);
      this.pending.delete(id);
      // `quit` is answered by the socket closing as often as by a reply.
      if (pending.command === 'quit') pending.resolve({});
      else pending.reject(this.closed(pending.command));
    }
  }
}
