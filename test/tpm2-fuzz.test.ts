import { fuzz } from './support/fuzz';
import { FUZZ_TARGETS, isTpmParseError } from './support/fuzz-targets';

// Every libs/tpm2 parser meets 100,000 mutated inputs: each one parses or is refused with
// TpmParseError; nothing else escapes and nothing hangs. (`npm run bench` runs 1,000,000.)
describe('libs/tpm2 parsers under mutation', () => {
  it.each(FUZZ_TARGETS.filter((t) => t.suiteInputs > 0))('$name: $suiteInputs mutants parse or fail with TpmParseError only', ({ seeds, parse, suiteInputs }) => {
    const report = fuzz(seeds(), parse, isTpmParseError, suiteInputs);
    expect(report.unexpected).toEqual([]);
    expect(report.crashes).toBe(0);
    expect(report.accepted + report.refused).toBe(suiteInputs);
    // Both outcomes must occur, or the mutator is not reaching the parser's logic.
    expect(report.accepted).toBeGreaterThan(0);
    expect(report.refused).toBeGreaterThan(0);
    // A parser that looped on an input would never return: the test's timeout is the hang guard.
    // No wall-clock bound (a loaded machine pauses any one input for seconds; bench/ measures speed).
  });
});
