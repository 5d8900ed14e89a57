/** Turning terminal bytes into text: UTF-8 across chunk boundaries, CRLF to LF, ANSI escapes removed. */
import { StringDecoder } from 'node:string_decoder';

import stripAnsi from 'strip-ansi';

/** Removes ANSI escape sequences and turns CRLF into LF. Lone CRs (progress bars) stay. */
export function cleanText(text: string): string {
  return stripAnsi(text).replace(/\r+\n/g, '\n');
}

/**
 * Incremental {@link cleanText}: chunks may split UTF-8 characters, CRLF pairs and escape
 * sequences; whatever might continue in the next chunk is held back until it does.
 */
export class TextCleaner {
  private readonly decoder = new StringDecoder('utf8');
  private carry = '';

  /** Cleans the next chunk; returns the text that is complete so far. */
  push(chunk: Buffer | string): string {
    const text = this.carry + (typeof chunk === 'string' ? chunk : this.decoder.write(chunk));
    let cut = text.length;
    // A trailing CR may be the first half of CRLF.
    while (cut > 0 && text[cut - 1] === '\r') cut--;
    // A trailing escape sequence may be incomplete.
    const escape = text.lastIndexOf('\x1b', cut - 1);
    if (escape !== -1 && cut - escape < 64 && stripAnsi(text.slice(escape, cut)).includes('\x1b')) cut = escape;
    this.carry = text.slice(cut);
    return cleanText(text.slice(0, cut));
  }

  /** Returns whatever was held back. */
  flush(): string {
    const rest = this.carry + this.decoder.end();
    this.carry = '';
    return cleanText(rest);
  }
}

/** Splits streamed text into complete lines for line listeners. */
export class LineSplitter {
  private partial = '';
  /** The partial line was emitted early; its newline, if it comes, is already accounted for. */
  private emittedEarly = false;

  constructor(private readonly onLine: (line: string) => void) {}

  push(text: string): void {
    if (!text) return;
    if (this.emittedEarly) {
      this.emittedEarly = false;
      if (text.startsWith('\n')) text = text.slice(1);
      if (!text) return;
    }
    const parts = (this.partial + text).split('\n');
    this.partial = parts.pop() ?? '';
    for (const line of parts) this.onLine(line);
  }

  /**
   * Emits the partial line now: the caller knows a line end follows (held back only
   * because it might begin an end marker). Either way the line is complete, and live
   * listeners should not wait for the next output to see it.
   */
  endLineEarly(): void {
    if (!this.partial) return;
    this.onLine(this.partial);
    this.partial = '';
    this.emittedEarly = true;
  }

  /** Emits a last line that had no newline. */
  flush(): void {
    if (this.partial) this.onLine(this.partial);
    this.partial = '';
  }
}
