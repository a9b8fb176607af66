import { fuzz } from '../test/support/fuzz';
import { FUZZ_TARGETS, isTpmParseError } from '../test/support/fuzz-targets';
import { IMA_FUZZ_TARGETS } from '../test/support/ima-fuzz-targets';
import { formatTable } from './measure';

/** The long fuzz run: 1,000,000 mutants per parser (the suite runs 100,000). */
export async function fuzzBench(inputsPerParser = 1_000_000): Promise<string> {
  const rows: string[][] = [['parser', 'inputs', 'parsed', 'refused (typed error)', 'other exceptions', 'slowest input', 'total']];
  const targets = [...FUZZ_TARGETS.map((t) => ({ ...t, isExpected: isTpmParseError })), ...IMA_FUZZ_TARGETS];
  for (const target of targets) {
    const report = fuzz(target.seeds(), target.parse, target.isExpected, inputsPerParser, 0xbe4c4);
    rows.push([
      target.name,
      String(report.inputs),
      String(report.accepted),
      String(report.refused),
      String(report.crashes),
      `${report.slowestMs.toFixed(2)} ms`,
      `${(report.totalMs / 1000).toFixed(1)} s`,
    ]);
    for (const crash of report.unexpected) {
      process.stderr.write(`${target.name} crash at #${crash.index}: ${crash.error}\n  input ${crash.input}\n`);
    }
  }
  return formatTable(rows);
}
