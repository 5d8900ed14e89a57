/** Timing helpers for the benchmark: medians of repeated runs, throughput, formatting. */
import { performance } from 'node:perf_hooks';

/** Median of a list of numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Runs `body` `times` times (after `warmup` unmeasured runs) and returns each duration in ms. */
export async function timeRuns(times: number, body: () => Promise<unknown>, warmup = 2): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await body();
  const durations: number[] = [];
  for (let i = 0; i < times; i++) {
    const started = performance.now();
    await body();
    durations.push(performance.now() - started);
  }
  return durations;
}

/** MB/s (10^6 bytes per second). */
export function mbps(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}

/** One line of the results table. */
export interface Row {
  section: string;
  metric: string;
  labwright: number;
  reference?: number | undefined;
  referenceName?: string | undefined;
  unit: 'ms' | 'MB/s' | 'cmd/s' | 'op/s';
  /** How many times better labwright is (reference/labwright for times, labwright/reference for rates). */
  ratio?: number | undefined;
  target?: string | undefined;
  /** Set when the section could not measure this: why. */
  failure?: string | undefined;
}

/** The row of a section that failed: the table says so and the run goes on. */
export function failedRow(section: string, error: unknown): Row {
  const message = error instanceof Error ? error.message : String(error);
  return { section, metric: 'FAILED', labwright: Number.NaN, unit: 'ms', failure: message.split('\n')[0]!.slice(0, 200) };
}

export function row(section: string, metric: string, unit: Row['unit'], labwright: number, reference?: number, referenceName?: string, target?: string): Row {
  const ratio = reference === undefined ? undefined : unit === 'ms' ? reference / labwright : labwright / reference;
  return { section, metric, unit, labwright, reference, referenceName, ratio, target };
}

export function formatTable(rows: readonly Row[]): string {
  const fmt = (value: number | undefined, unit: string) =>
    value === undefined ? '' : `${value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)} ${unit}`;
  const lines = [['section', 'metric', 'labwright', 'reference', 'ratio', 'target']];
  for (const r of rows) {
    if (r.failure !== undefined) {
      lines.push([r.section, r.metric, r.failure, '', '', '']);
      continue;
    }
    lines.push([
      r.section,
      r.metric,
      fmt(r.labwright, r.unit),
      r.reference === undefined ? '' : `${fmt(r.reference, r.unit)} (${r.referenceName})`,
      r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}x`,
      r.target ?? '',
    ]);
  }
  const widths = lines[0]!.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  return lines
    .map((l) =>
      l
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
