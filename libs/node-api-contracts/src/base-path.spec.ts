import { NODE_API_BASE_PATH, NODE_API_VERSION, nodeApiPath } from './base-path';

describe('node API base path', () => {
  it('is versioned, and apart from the operator API under /v1', () => {
    expect(NODE_API_VERSION).toBe('v1');
    expect(NODE_API_BASE_PATH).toBe('/node/v1');
    expect(NODE_API_BASE_PATH.startsWith('/v1')).toBe(false);
  });

  it.each([
    ['registrations', '/node/v1/registrations'],
    ['/registrations', '/node/v1/registrations'],
    ['//deliveries/next', '/node/v1/deliveries/next'],
    ['', '/node/v1'],
  ])('nodeApiPath(%j) is %j', (route, path) => {
    expect(nodeApiPath(route)).toBe(path);
  });
});
