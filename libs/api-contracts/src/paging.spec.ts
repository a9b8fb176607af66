import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MIN_PAGE_SIZE, nextPageAfter, parseWholeNumber } from './paging';

describe('paging', () => {
  it('declares a default page size within the bounds', () => {
    expect([MIN_PAGE_SIZE, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE]).toEqual([1, 100, 1000]);
  });

  it.each([
    ['1', 1],
    ['1000', 1000],
    [' 42 ', 42],
    ['0007', 7],
  ])('parseWholeNumber(%j) is %d', (text, value) => {
    expect(parseWholeNumber(text, MIN_PAGE_SIZE, MAX_PAGE_SIZE)).toBe(value);
  });

  it.each(['0', '1001', '-1', '+5', '1e3', '1.0', '0x10', '', ' ', '١٢', '9007199254740993'])('parseWholeNumber(%j) breaks the rule', (text) => {
    expect(parseWholeNumber(text, MIN_PAGE_SIZE, MAX_PAGE_SIZE)).toBeUndefined();
  });

  it('a full page points at the next one, a shorter or empty page is the last', () => {
    expect(nextPageAfter([{ seq: 1 }, { seq: 2 }], 2, (r) => r.seq)).toBe(2);
    expect(nextPageAfter([{ seq: 1 }], 2, (r) => r.seq)).toBeUndefined();
    expect(nextPageAfter([], 0, (r: { seq: number }) => r.seq)).toBeUndefined();
  });
});
