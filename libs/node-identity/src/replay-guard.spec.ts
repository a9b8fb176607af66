import { MemoryReplayGuard } from './index';

const T0 = new Date('2026-12-02T12:00:00Z');
const ID = '0123456789abcdef0123456789abcdef';
const NONCE = Buffer.alloc(16, 1);

describe('MemoryReplayGuard', () => {
  it('answers true the first time and false for the same credential and nonce again', async () => {
    const guard = new MemoryReplayGuard(() => T0);
    const until = new Date(T0.getTime() + 300_000);
    expect(await guard.remember(ID, NONCE, until)).toBe(true);
    expect(await guard.remember(ID, Buffer.from(NONCE), until)).toBe(false);
    expect(await guard.remember(ID, Buffer.alloc(16, 2), until)).toBe(true);
    expect(await guard.remember('f'.repeat(32), NONCE, until)).toBe(true);
    expect(guard.size).toBe(3);
  });

  it('forgets an entry once its expiry is reached, and not before', async () => {
    let now = T0;
    const guard = new MemoryReplayGuard(() => now);
    const until = new Date(T0.getTime() + 300_000);
    expect(await guard.remember(ID, NONCE, until)).toBe(true);
    now = new Date(until.getTime() - 1);
    expect(await guard.remember(ID, NONCE, until)).toBe(false);
    now = until;
    expect(await guard.remember(ID, NONCE, new Date(until.getTime() + 300_000))).toBe(true);
    expect(guard.size).toBe(1);
  });
});
