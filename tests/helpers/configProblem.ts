/** The problems `defineLab()` reports for an invalid lab, as its error message. */
import { defineLab, type LabInput } from '../../src/config/defineLab.js';

export function configProblem(input: unknown): string {
  try {
    defineLab(input as LabInput);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('the config was accepted');
}
