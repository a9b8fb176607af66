import { isLimitedPath } from './rate-limits';

describe('isLimitedPath', () => {
  // Express routes case-insensitively by default ('case sensitive routing' off): /V1/machines and
  // /NODE/v1/attestations reach the same handlers, so they must spend the same per-address budget.
  it.each(['/v1/machines', '/V1/machines', '/v1/Machines', '/node/v1/attestations', '/NODE/v1/attestations', '/Node/V1/self'])('%s is limited', (path) => {
    expect(isLimitedPath(path)).toBe(true);
  });

  it.each(['/health/live', '/metrics', '/docs', '/DOCS/openapi.json', '/v1', '/nodes/v1/x'])('%s is not', (path) => {
    expect(isLimitedPath(path)).toBe(false);
  });
});
