import { ALL_SCOPES, grants, isScope } from './scopes';

describe('grants', () => {
  it('admin grants every scope', () => {
    for (const scope of ALL_SCOPES) {
      expect(grants(['admin'], scope)).toBe(true);
    }
  });

  it('vendor-ca:write and inventory:write imply their read scope, nothing more', () => {
    expect(grants(['vendor-ca:write'], 'vendor-ca:read')).toBe(true);
    expect(grants(['inventory:write'], 'inventory:read')).toBe(true);
    expect(grants(['vendor-ca:write'], 'inventory:read')).toBe(false);
    expect(grants(['inventory:write'], 'vendor-ca:read')).toBe(false);
    expect(grants(['vendor-ca:write', 'inventory:write'], 'audit:read')).toBe(false);
    expect(grants(['vendor-ca:write'], 'admin')).toBe(false);
  });

  it('read never implies write', () => {
    expect(grants(['vendor-ca:read'], 'vendor-ca:write')).toBe(false);
    expect(grants(['inventory:read'], 'inventory:write')).toBe(false);
    expect(grants([], 'vendor-ca:read')).toBe(false);
  });

  it('a stored scope that is an Object.prototype member name grants nothing and is not a scope', () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      expect(isScope(name)).toBe(false);
      expect(grants([name], 'vendor-ca:read')).toBe(false);
    }
  });
});
