/**
 * Kernel messages on a serial console: printk writes straight to the UART, so its lines
 * land in the middle of whatever a command prints (even in the middle of a line, or of a
 * marker). They are recognisable: printk's timestamp prefix `[   12.345678] `, and a CR LF
 * ending (the serial console driver adds the CR; labwright's shells print bare LF after
 * `stty -onlcr`). This filter takes such lines out of the byte stream and reports them.
 *
 * A possible beginning of a kernel line at the end of a chunk is held back until it is
 * decided, which happens within the line: any byte that does not fit the form releases it.
 */

/** A complete kernel console line. */
const KERNEL_LINE = /\[ *\d+\.\d+\] [^\r\n]*\r\n/;
/** Text that may still become a kernel line (no line end yet). */
const KERNEL_PREFIX = /^\[ *(\d+(\.\d*)?(\]( [^\r\n]*\r?)?)?)?$/;
/** A held-back candidate longer than this is output after all (no kernel line is that long). */
const MAX_HELD = 4096;

/** Removes kernel console lines from a byte stream. */
export class KernelLineFilter {
  private held = '';

  /** @param onLine receives each kernel line, without its line end */
  constructor(private readonly onLine: (line: string) => void) {}

  /** Filters the next chunk; returns the bytes that are not (and cannot become) kernel lines. */
  push(chunk: Buffer): Buffer {
    // latin1 maps bytes 1:1, so slicing text slices bytes and UTF-8 passes through untouched.
    let text = this.held + chunk.toString('latin1');
    this.held = '';
    let out = '';
    for (let match = KERNEL_LINE.exec(text); match; match = KERNEL_LINE.exec(text)) {
      out += text.slice(0, match.index);
      this.onLine(Buffer.from(match[0].slice(0, -2), 'latin1').toString('utf8'));
      text = text.slice(match.index + match[0].length);
    }
    const lineStart = text.lastIndexOf('\n') + 1;
    let cut = -1;
    for (let at = text.indexOf('[', lineStart); at !== -1; at = text.indexOf('[', at + 1)) {
      if (KERNEL_PREFIX.test(text.slice(at))) {
        cut = at;
        break;
      }
    }
    if (cut !== -1 && text.length - cut <= MAX_HELD) {
      this.held = text.slice(cut);
      text = text.slice(0, cut);
    }
    return Buffer.from(out + text, 'latin1');
  }

  /** Whatever is held back, as output (the stream ended, or a command gave up waiting). */
  flush(): Buffer {
    const rest = this.held;
    this.held = '';
    return Buffer.from(rest, 'latin1');
  }
}
