/**
 * Errors laid out for the HTML report, which shows them in a `white-space: pre` box: the
 * cause first (host, protocol, what went wrong), then what to do on a line of its own,
 * every line wrapped at {@link REPORT_WIDTH} columns so nothing needs horizontal scrolling.
 */
import { ConfigError, LabwrightError } from '../util/errors.js';
import { redact } from '../util/secrets.js';

/** Columns of an error line in the report. */
export const REPORT_WIDTH = 100;

/** Word-wraps one line at `width`, continuation lines indented by `indent`. Words longer than a line stay whole. */
export function wrapLine(line: string, width = REPORT_WIDTH, indent = '  '): string {
  if (line.length <= width) return line;
  const lead = /^\s*/.exec(line)![0];
  const words = line.slice(lead.length).split(/ +/);
  const lines: string[] = [];
  let current = lead;
  for (const word of words) {
    const blank = current.trim() === '';
    if (!blank && current.length + 1 + word.length > width) {
      lines.push(current);
      current = `${lead}${indent}${word}`;
    } else {
      current = blank ? `${current}${word}` : `${current} ${word}`;
    }
  }
  lines.push(current);
  return lines.join('\n');
}

/** Wraps every line of a text. */
export function wrapText(text: string, width = REPORT_WIDTH, indent = '  '): string {
  return text
    .split('\n')
    .map((line) => wrapLine(line, width, indent))
    .join('\n');
}

/**
 * The report layout of a labwright error: cause, a blank line, `What to do:` and the hint.
 * Reporters print `Name: message`, so the first line leaves room for the error's name.
 */
export function reportMessage(error: LabwrightError): string {
  const head = `${error.name}: `;
  const wrap = (text: string, indent: string) => wrapText(`${head}${text}`, REPORT_WIDTH, indent).slice(head.length);
  if (error instanceof ConfigError) return wrap(error.message, '    ');
  const where = error.host ? `${error.host}${error.protocol ? ` (${error.protocol})` : ''}: ` : error.protocol ? `${error.protocol}: ` : '';
  const cause = wrap(`${where}${error.detail}`, '  ');
  return error.hint ? `${cause}\n\n${wrapText(`What to do: ${redact(error.hint)}`)}` : cause;
}

const LAID_OUT = Symbol.for('labwright.reportLayout');

/**
 * Rewrites a labwright error's message (and the first lines of its stack, which is what
 * reporters print) into the report layout, once. Other errors are left alone.
 */
export function layOutForReport<T>(error: T): T {
  if (!(error instanceof LabwrightError) || (error as unknown as Record<symbol, boolean>)[LAID_OUT]) return error;
  const before = error.message;
  const after = reportMessage(error);
  Object.defineProperty(error, LAID_OUT, { value: true });
  if (after === before) return error;
  error.message = after;
  if (error.stack?.includes(before)) error.stack = error.stack.replace(before, after);
  return error;
}
