import { fuzz } from './support/fuzz';
import { IMA_FUZZ_TARGETS } from './support/ima-fuzz-targets';

// libs/ima's parsers meet mutated real inputs: each parses or is refused with its one typed error
// (ImaParseError, RuntimePolicyError, ExcludePatternError); nothing else escapes and nothing hangs.
// (`npm run bench -- fuzz` runs 1,000,000 per parser.)
describe('libs/ima parsers under mutation', () => {
  it.each(IMA_FUZZ_TARGETS)('$name: $suiteInputs mutants parse or fail with the typed error only', ({ seeds, parse, isExpected, suiteInputs }) => {
    const report = fuzz(seeds(), parse, isExpected, suiteInputs, 0x1a417);
    expect(report.unexpected).toEqual([]);
    expect(report.crashes).toBe(0);
    expect(report.accepted + report.refused).toBe(suiteInputs);
    expect(report.accepted).toBeGreaterThan(0);
    expect(report.refused).toBeGreaterThan(0);
  });
});
