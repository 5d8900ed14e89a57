/**
 * Transfer progress for put/get: a bar redrawn in place on a terminal (bytes, rate, ETA),
 * plain lines elsewhere (a CI log), at most one every few seconds so logs stay short.
 */
import { formatBytes, formatClock, formatRate } from './format.js';

/** `bar` on a terminal, `plain` for logs, `none` for silence. */
export type ProgressMode = 'bar' | 'plain' | 'none';

/** Where progress goes and how often plain lines are written. */
export interface ProgressOptions {
  mode: ProgressMode;
  /** The stream written to (stderr, so stdout stays for results). */
  out: NodeJS.WritableStream & { columns?: number };
  /** Minimum time between two plain lines (ms). Default 2000. */
  plainInterval?: number;
  /** Minimum time between two redraws of the bar (ms). Default 100. */
  barInterval?: number;
  /** Clock, for tests. */
  now?: () => number;
}

const BAR_WIDTH = 24;

/** Tracks one transfer and renders its progress. */
export class ProgressReporter {
  private readonly started: number;
  private lastDraw = -Infinity;
  private transferred = 0;
  private total = 0;
  private drawn = false;
  private readonly now: () => number;

  constructor(
    private readonly label: string,
    private readonly options: ProgressOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.started = this.now();
  }

  /** Feeds a progress report (as TransferOptions.onProgress gives it). */
  update(transferred: number, total: number): void {
    this.transferred = transferred;
    this.total = total;
    const { mode } = this.options;
    if (mode === 'none') return;
    const interval = mode === 'bar' ? (this.options.barInterval ?? 100) : (this.options.plainInterval ?? 2_000);
    const now = this.now();
    if (now - this.lastDraw < interval) return;
    this.lastDraw = now;
    this.draw(now);
  }

  /** Ends the display: the bar's line is finished, so what follows starts on a new line. */
  finish(): void {
    if (this.options.mode === 'bar' && this.drawn) {
      this.draw(this.now());
      this.options.out.write('\n');
    }
  }

  /** The current figures as text: `45% 4.5 MiB/10.0 MiB 12.3 MiB/s ETA 0:01`. */
  figures(now = this.now()): string {
    const seconds = Math.max(0.001, (now - this.started) / 1000);
    const rate = this.transferred / seconds;
    const known = this.total > 0;
    const percent = known ? Math.min(100, Math.floor((this.transferred / this.total) * 100)) : undefined;
    const eta = known && rate > 0 ? formatClock((this.total - this.transferred) / rate) : '?';
    return `${percent === undefined ? '' : `${String(percent).padStart(3)}% `}${formatBytes(this.transferred)}${known ? `/${formatBytes(this.total)}` : ''} ${formatRate(rate)} ETA ${eta}`;
  }

  private draw(now: number): void {
    const { out, mode } = this.options;
    if (mode === 'plain') {
      out.write(`${this.label}: ${this.figures(now).trim()}\n`);
      return;
    }
    const fraction = this.total > 0 ? Math.min(1, this.transferred / this.total) : 0;
    const filled = Math.round(fraction * BAR_WIDTH);
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}]`;
    let line = `${this.label} ${bar} ${this.figures(now)}`;
    const columns = out.columns ?? 80;
    if ([...line].length > columns - 1) line = `${bar} ${this.figures(now)}`.slice(0, columns - 1);
    // Carriage return, the line, then erase what a longer previous line left.
    out.write(`\r${line}\x1b[K`);
    this.drawn = true;
  }
}
