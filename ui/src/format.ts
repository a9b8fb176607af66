/** An instant as operators read it: UTC, to the second, always with its zone. */
export function instant(value: string | null | undefined): string {
  if (value === null || value === undefined) {
    return 'never';
  }
  const at = new Date(value);
  return Number.isNaN(at.getTime()) ? value : `${at.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** A duration in milliseconds, in the largest unit that keeps it readable. */
export function duration(ms: number): string {
  if (ms < 1000) {
    return `${Math.round(ms)} ms`;
  }
  const seconds = ms / 1000;
  if (seconds < 120) {
    return `${Math.round(seconds)} s`;
  }
  const minutes = seconds / 60;
  return minutes < 120 ? `${Math.round(minutes)} min` : `${Math.round(minutes / 60)} h`;
}
