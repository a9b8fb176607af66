import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { KeyObjectCache } from './key-object-cache';

const keys: KeyObject[] = [0, 1, 2].map(() => createPublicKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey));

describe('KeyObjectCache', () => {
  it('returns the kept KeyObject for a known key without calling create', () => {
    const cache = new KeyObjectCache(2);
    expect(cache.get('a', () => keys[0]!)).toBe(keys[0]);
    expect(cache.get('a', () => { throw new Error('create called for a cached key'); })).toBe(keys[0]);
    expect(cache.size).toBe(1);
  });

  it('evicts the least recently used key beyond its bound', () => {
    const cache = new KeyObjectCache(2);
    cache.get('a', () => keys[0]!);
    cache.get('b', () => keys[1]!);
    cache.get('a', () => keys[2]!); // a used again: b is now the oldest
    cache.get('c', () => keys[2]!);
    expect(cache.size).toBe(2);
    expect(cache.get('a', () => keys[2]!)).toBe(keys[0]);
    expect(cache.get('b', () => keys[2]!)).toBe(keys[2]);
  });

  it('clear drops every kept KeyObject: the next get creates afresh', () => {
    const cache = new KeyObjectCache(2);
    cache.get('a', () => keys[0]!);
    cache.get('b', () => keys[1]!);
    cache.clear();
    expect(cache.size).toBe(0);
    expect(cache.get('a', () => keys[2]!)).toBe(keys[2]);
  });

  it('keeps nothing when create throws', () => {
    const cache = new KeyObjectCache(2);
    expect(() => cache.get('bad', () => { throw new RangeError('not a key'); })).toThrow('not a key');
    expect(cache.size).toBe(0);
    expect(cache.get('bad', () => keys[1]!)).toBe(keys[1]);
  });
});
