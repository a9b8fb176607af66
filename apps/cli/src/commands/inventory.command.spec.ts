import type { RecordedImport } from '@rackseal/api-contracts';
import { formatSummary } from './inventory.command';

const RECORD: RecordedImport = {
  id: '0b6f1d4e-5c1a-4e0e-9a59-3f0c1d2e3f40',
  status: 'succeeded',
  dryRun: false,
  partial: false,
  fileName: 'rack-12.csv',
  startedBy: 'token:1',
  counts: { rows: 2, valid: 2, invalid: 0, created: 2, updated: 0, unchanged: 0 },
  problems: [],
  problemsTruncated: false,
  startedAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:00:01.000Z',
};

describe('inventory show: the first line of a recorded import', () => {
  it.each([
    ['succeeded', 'imported (import 0b6f1d4e-5c1a-4e0e-9a59-3f0c1d2e3f40)'],
    ['refused', 'refused: nothing was imported because some rows are refused (fix them, or use --partial) (import 0b6f1d4e-5c1a-4e0e-9a59-3f0c1d2e3f40)'],
    // The record's other states (the table allows them): never reported as "refused because some rows are refused".
    ['failed', 'failed: the import stopped before it ended, nothing was imported (import 0b6f1d4e-5c1a-4e0e-9a59-3f0c1d2e3f40)'],
    ['running', 'running: the import has not ended yet (import 0b6f1d4e-5c1a-4e0e-9a59-3f0c1d2e3f40)'],
  ] as const)('%s', (status, line) => {
    expect(formatSummary({ ...RECORD, status }).split('\n')[0]).toBe(line);
  });
});
