/**
 * Benchmark timing: run an operation repeatedly after a warm-up and report per-operation cost.
 * Results are printed and copied into bench/README.md with the machine and date; nothing here
 * asserts a time (performance targets are read from ratios measured side by side in one run).
 */
export interface Measurement {
  readonly name: string;
  readonly iterations: number;
  readonly meanUs: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly opsPerSecond: number;
}

export async function measure(name: string, operation: () => unknown | Promise<unknown>, options: { iterations?: number; warmup?: number } = {}): Promise<Measurement> {
  const iterations = options.iterations ?? 1000;
  for (let i = 0; i < (options.warmup ?? Math.min(100, iterations)); i += 1) {
    await operation();
  }
  const samples = new Float64Array(iterations);
  const started = performance.now();
  for (let i = 0; i < iterations; i += 1) {
    const t0 = performance.now();
    await operation();
    samples[i] = (performance.now() - t0) * 1000;
  }
  const totalMs = performance.now() - started;
  const sorted = Array.from(samples).sort((a, b) => a - b);
  return {
    name,
    iterations,
    meanUs: (totalMs * 1000) / iterations,
    p50Us: sorted[Math.floor(iterations * 0.5)]!,
    p99Us: sorted[Math.min(iterations - 1, Math.floor(iterations * 0.99))]!,
    opsPerSecond: iterations / (totalMs / 1000),
  };
}

export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const line = (r: readonly string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}

export const us = (value: number): string => (value >= 1000 ? `${(value / 1000).toFixed(2)} ms` : `${value.toFixed(1)} µs`);

/** The median of `values` (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function mean(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}
