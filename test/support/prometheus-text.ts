/** One sample of the Prometheus text format 0.0.4: a name, its labels, its value. */
export interface PrometheusSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export type Samples = readonly PrometheusSample[];

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses an exposition's sample lines (comments skipped); a line that is no sample fails the test. */
export function parseMetrics(text: string): PrometheusSample[] {
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const match = SAMPLE.exec(line);
      if (match === null) {
        throw new Error(`not a Prometheus sample line: ${line}`);
      }
      const labels: Record<string, string> = {};
      for (const [, name, value] of (match[2] ?? '').matchAll(LABEL)) {
        labels[name!] = value!.replace(/\\"/g, '"').replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      }
      return { name: match[1]!, labels, value: Number(match[3]) };
    });
}

/** The value of the one sample with exactly these labels, or undefined when there is none. */
export function sample(samples: Samples, name: string, labels: Readonly<Record<string, string>>): number | undefined {
  const wanted = Object.entries(labels);
  const found = samples.filter((s) => s.name === name && Object.keys(s.labels).length === wanted.length && wanted.every(([k, v]) => s.labels[k] === v));
  if (found.length > 1) {
    throw new Error(`${found.length} samples of ${name} with labels ${JSON.stringify(labels)}`);
  }
  return found[0]?.value;
}

/** Every metric family name an exposition declares (its `# TYPE` lines). */
export function metricNames(text: string): Set<string> {
  return new Set([...text.matchAll(/^# TYPE (\S+) \S+$/gm)].map((m) => m[1]!));
}

// PromQL words that look like metric names: functions, aggregations, keywords, time units aside.
const PROMQL_WORDS = new Set([
  'sum', 'min', 'max', 'avg', 'count', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'rate', 'irate', 'increase',
  'histogram_quantile', 'and', 'or', 'unless', 'offset', 'bool', 'le', 'abs', 'clamp_min', 'clamp_max', 'time', 'vector', 'topk', 'bottomk',
]);

/**
 * The metric names a PromQL expression selects: identifiers outside label matchers, braces and
 * strings that are neither PromQL words nor label names of a `by (…)` clause.
 */
export function metricsInExpression(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const withoutMatchers = withoutStrings.replace(/\{[^}]*\}/g, '{}').replace(/\[[^\]]*\]/g, '[]');
  const withoutGrouping = withoutMatchers.replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, '');
  return [...new Set([...withoutGrouping.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)].map((m) => m[0]).filter((word) => !PROMQL_WORDS.has(word)))];
}
