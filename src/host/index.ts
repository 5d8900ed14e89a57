export * from './results.js';
export * from './events.js';
export * from './commands.js';
export * from './hostSession.js';
export * from './host.js';
export { LocalHost } from './localHost.js';
export * from './lab.js';
