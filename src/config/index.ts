export * from './schema.js';
export * from './defineLab.js';
export { hopChain, findHopCycle } from './hops.js';
export { loadLab, resolveLabFile, LAB_FILE_ENV, DEFAULT_LAB_FILE } from './load.js';
