/**
 * The console log: everything a console prints, as timed lines (one timestamp per line:
 * when its first byte arrived), ANSI escapes removed, secrets masked. Lines are emitted as
 * lab events, so the Playwright layer attaches them to the test (`console: <host>`).
 */
import { TextCleaner } from '../session/text.js';
import { redact } from '../util/secrets.js';
import type { LabEvents } from './events.js';

/** An open line still quiet after this long (ms) is shown as it is (a prompt, say). */
const PARTIAL_AFTER_MS = 300;

export class ConsoleLog {
  private cleaner = new TextCleaner();
  private line = '';
  private lineTime = 0;
  private lineId = 0;
  private timer: NodeJS.Timeout | undefined;
  private static nextId = 1;

  constructor(
    private readonly host: string,
    private readonly events: LabEvents,
  ) {}

  /** Bytes the console printed at `time`. */
  push(bytes: Buffer, time: number): void {
    this.take(this.cleaner.push(bytes), time);
  }

  /** A line of labwright's own about the console (connected, lost), set apart with `---`. */
  note(text: string): void {
    if (this.line) this.flushLine(Date.now());
    this.emit(ConsoleLog.nextId++, Date.now(), `--- ${text}`, false);
  }

  /** Emits the open line, if any, as it is (end of a test). */
  flush(): void {
    this.take(this.cleaner.flush(), Date.now());
    if (this.line) this.emit(this.lineId, this.lineTime, this.line, true);
  }

  private take(text: string, time: number): void {
    if (!text) return;
    const parts = text.split('\n');
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!.replace(/\r/g, '');
      if (part && !this.line) {
        this.lineTime = time;
        this.lineId = ConsoleLog.nextId++;
      }
      this.line += part;
      if (i < parts.length - 1) this.flushLine(time);
    }
    clearTimeout(this.timer);
    if (this.line) {
      this.timer = setTimeout(() => this.emit(this.lineId, this.lineTime, this.line, true), PARTIAL_AFTER_MS);
      this.timer.unref();
    }
  }

  private flushLine(time: number): void {
    clearTimeout(this.timer);
    if (!this.line && !this.lineId) {
      // An empty line: keep blank lines of the console, they separate its blocks.
      this.emit(ConsoleLog.nextId++, time, '', false);
      return;
    }
    this.emit(this.lineId || ConsoleLog.nextId++, this.lineTime || time, this.line, false);
    this.line = '';
    this.lineId = 0;
    this.lineTime = 0;
  }

  private emit(lineId: number, time: number, line: string, partial: boolean): void {
    this.events.emit({ type: 'console', host: this.host, time, lineId, line: redact(line), partial });
  }
}
