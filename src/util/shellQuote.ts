/** POSIX shell quoting: the one place where text becomes a shell word. */

/** `text` as one single-quoted POSIX shell word; `'` becomes `'\''`. */
export function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** `text` as a shell word, quoted only when it needs to be (for command lines people read). */
export function shellWord(text: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(text) ? text : shellQuote(text);
}
