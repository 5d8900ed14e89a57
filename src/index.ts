/**
 * labwright: Playwright Test fixtures for hardware-lab automation.
 *
 * ```ts
 * import { test, expect } from 'labwright';
 * ```
 */
export * from './core.js';
export * from './playwright/index.js';
