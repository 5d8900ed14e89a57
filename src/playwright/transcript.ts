/**
 * Per-host transcripts of a test: every command with its output, exit code and duration,
 * sends (secrets masked), expects, session and transfer events, with timestamps.
 */
import type { LabEvent } from '../host/events.js';
import { MASK, redact } from '../util/secrets.js';
import { formatClock as clock, formatDuration } from '../util/time.js';

const OUTPUT_INDENT = '               │ ';

/**
 * The gutter of an output line: blank for the default shell, the command's label
 * (`exec#7`, a session name) otherwise, so that the output of concurrent exec calls and
 * sessions is attributed to its command however the lines interleave.
 */
function gutter(session: string, id: number | undefined, mark = '│'): string {
  if (session === 'default') return OUTPUT_INDENT.replace('│', mark);
  const tag = session === 'exec' && id !== undefined ? `exec#${id}` : session;
  return `${tag.padStart(OUTPUT_INDENT.length - 1)} ${mark} `;
}

/** Collects lab events by host and renders them as text. */
export class TranscriptRecorder {
  private readonly lines = new Map<string, string[]>();
  /** Named sessions opened while recording, by host, so the fixtures can close them. */
  readonly openedSessions = new Map<string, Set<string>>();
  /** Console log lines by host; an index by line id, so a partial line is replaced when it ends. */
  private readonly consoleLines = new Map<string, { lines: string[]; index: Map<number, number> }>();

  /** Commands started and not yet ended. */
  private running = 0;
  private readonly idleWaiters = new Set<() => void>();

  /** Resolves once every command recorded as started has ended, or after `timeoutMs`. */
  settled(timeoutMs: number): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.idleWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.idleWaiters.add(done);
    });
  }

  record(event: LabEvent): void {
    if (event.type === 'console') return this.recordConsole(event);
    if (event.type === 'command-start') this.running++;
    if (event.type === 'command-end') {
      this.running = Math.max(0, this.running - 1);
      if (this.running === 0) for (const waiter of [...this.idleWaiters]) waiter();
    }
    const out = this.linesOf(event.host);
    const at = clock(event.time);
    switch (event.type) {
      case 'note':
        out.push(`${at} · note: ${event.text}`);
        break;
      case 'command-start': {
        const [first, ...rest] = event.command.split('\n');
        out.push(`${at} ${label(event.session, event.id)} $ ${first}`);
        for (const line of rest) out.push(`${OUTPUT_INDENT.replace('│', '>')}${line}`);
        break;
      }
      case 'command-output':
        out.push(`${gutter(event.session, event.id)}${event.line}`);
        break;
      case 'command-end': {
        const result = event.result;
        const outcome =
          result.status === 'skipped'
            ? 'skipped'
            : result.status === 'unknown'
              ? 'done, no exit status'
              : result.exitCode !== null
                ? `exit ${result.exitCode}${result.signal ? ` (signal ${result.signal})` : ''}`
                : result.timedOut
                  ? 'TIMED OUT'
                  : result.aborted
                    ? 'ABORTED'
                    : 'ERROR';
        out.push(
          `${clock(event.time)} ${label(event.session, event.id)} → ${outcome} · ${formatDuration(result.durationMs)}${result.error ? ` · ${redact(result.error)}` : ''}`,
        );
        if (result.stderr) {
          for (const line of redact(result.stderr).replace(/\n$/, '').split('\n')) out.push(`${gutter(event.session, event.id, '!')}${line}`);
        }
        break;
      }
      case 'sent':
        out.push(`${at} [${event.session}] » sent ${event.secret ? MASK : JSON.stringify(redact(event.text))}`);
        break;
      case 'expect':
        out.push(
          `${at} [${event.session}] « expect ${event.pattern}: ${event.error ? `FAILED — ${redact(event.error)}` : `matched ${JSON.stringify(event.matched ?? '')}`}`,
        );
        break;
      case 'output':
        out.push(`${gutter(event.session, undefined)}${redact(event.line)}`);
        break;
      case 'session':
        if (event.event === 'opened' && event.session !== 'default') {
          const names = this.openedSessions.get(event.host) ?? new Set<string>();
          names.add(event.session);
          this.openedSessions.set(event.host, names);
        }
        out.push(`${at} [${event.session}] · ${event.protocol} session ${event.event}${event.detail ? ` (${redact(event.detail)})` : ''}`);
        break;
      case 'transfer':
        out.push(
          `${at} [transfer] ${event.direction} ${event.direction === 'put' ? `${event.local} → ${event.remote}` : `${event.remote} → ${event.local}`} via ${event.method}` +
            (event.error ? ` FAILED — ${redact(event.error)}` : ` · ${event.bytes ?? 0} bytes · ${formatDuration(event.durationMs)}`),
        );
        break;
      case 'connection':
        out.push(`${at} [${event.protocol}] · connection ${event.event}${event.detail ? ` (${redact(event.detail)})` : ''}`);
        break;
      case 'lease':
        out.push(`${at} [lease] · ${event.event} ${redact(event.detail)}`);
        break;
      case 'kernel':
        out.push(`${at} [${event.session}] ⚠ kernel: ${redact(event.line)}`);
        break;
      case 'power':
        out.push(`${at} [power] · ${redact(event.text)}${event.error ? ` FAILED — ${redact(event.error)}` : ''}`);
        break;
    }
  }

  private recordConsole(event: Extract<LabEvent, { type: 'console' }>): void {
    let log = this.consoleLines.get(event.host);
    if (!log) {
      log = { lines: [], index: new Map() };
      this.consoleLines.set(event.host, log);
    }
    const text = `${clock(event.time)} ${redact(event.line)}`;
    const at = log.index.get(event.lineId);
    if (at !== undefined) log.lines[at] = text;
    else {
      log.index.set(event.lineId, log.lines.length);
      log.lines.push(text);
    }
  }

  /** Hosts whose console printed something while recording. */
  get consoleHosts(): string[] {
    return [...this.consoleLines.keys()];
  }

  /** The console log of one host: one timestamped line per console line. */
  renderConsole(host: string): string {
    return `${(this.consoleLines.get(host)?.lines ?? []).join('\n')}\n`;
  }

  /** Hosts that have a transcript. */
  get hosts(): string[] {
    return [...this.lines.keys()];
  }

  /** The transcript of one host as text. */
  render(host: string): string {
    return `${(this.lines.get(host) ?? []).join('\n')}\n`;
  }

  private linesOf(host: string): string[] {
    let lines = this.lines.get(host);
    if (!lines) {
      lines = [];
      this.lines.set(host, lines);
    }
    return lines;
  }
}

function label(session: string, id: number): string {
  return session === 'exec' ? `[exec#${id}]` : `[${session}]`;
}
