export * from './results.js';
export * from './events.js';
export * from './commands.js';
export * from './hostSession.js';
export * from './host.js';
export { LocalHost } from './localHost.js';
export { RemoteHost, type RemoteHostDeps, type LocalForwardOptions, type RemoteForwardOptions } from './remoteHost.js';
export { Share, type ShareOptions, type ShareClientCommands } from '../share/share.js';
export * from './lab.js';
