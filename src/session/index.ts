export * from './shellSession.js';
export * from './transport.js';
export { LocalShellTransport, type LocalShellOptions } from './localShell.js';
export { cleanText } from './text.js';
