import { TpmWriter } from '../codec/tpm-writer';
import { TpmClient } from '../client/tpm-client';
import { TpmError } from '../client/tpm-errors';
import type { TpmTransport } from '../client/transport';
import { TpmScope, TpmScopeCleanupError, withTpmScope } from './tpm-scope';

/** Answers FlushContext with the response code `rcFor(handle)` gives and records the flushed handles. */
class FlushingTpm implements TpmTransport {
  readonly description = 'fake';
  readonly flushed: number[] = [];
  constructor(private readonly rcFor: (handle: number) => number = () => 0) {}

  async transmit(command: Buffer): Promise<Buffer> {
    expect(command.readUInt32BE(6)).toBe(0x165);
    const handle = command.readUInt32BE(10);
    this.flushed.push(handle);
    return new TpmWriter().u16(0x8001).u32(10).u32(this.rcFor(handle)).toBuffer();
  }

  async close(): Promise<void> {}
}

describe('TpmScope', () => {
  it('flushes transient objects and sessions newest first; persistent and permanent handles are not its to flush', async () => {
    const tpm = new FlushingTpm();
    await withTpmScope(new TpmClient(tpm), async (scope) => {
      scope.track(0x80000000);
      scope.track(0x81010001);
      scope.track(0x03000000);
      scope.track(0x40000001);
      scope.track(0x02000001);
      scope.track(0x80000000);
    });
    expect(tpm.flushed).toEqual([0x02000001, 0x03000000, 0x80000000]);
  });

  it('does not flush what the TPM already closed (forget) and flushes on demand only once', async () => {
    const tpm = new FlushingTpm();
    await withTpmScope(new TpmClient(tpm), async (scope) => {
      scope.track(0x80000000);
      scope.track(0x03000000);
      scope.forget(0x03000000);
      scope.track(0x80000001);
      await scope.flush(0x80000001);
    });
    expect(tpm.flushed).toEqual([0x80000001, 0x80000000]);
  });

  it('when the work throws, its error is what the caller sees and everything is still flushed', async () => {
    const tpm = new FlushingTpm((h) => (h === 0x80000000 ? 0x101 : 0));
    const failure = new Error('unseal refused');
    await expect(
      withTpmScope(new TpmClient(tpm), async (scope) => {
        scope.track(0x80000000);
        scope.track(0x80000001);
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(tpm.flushed).toEqual([0x80000001, 0x80000000]);
  });

  it('a flush the TPM refuses after successful work is a TpmScopeCleanupError naming the handle; the others are still flushed', async () => {
    const tpm = new FlushingTpm((h) => (h === 0x80000001 ? 0x101 : 0));
    const error = await withTpmScope(new TpmClient(tpm), async (scope) => {
      scope.track(0x80000000);
      scope.track(0x80000001);
      scope.track(0x80000002);
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TpmScopeCleanupError);
    const failures = (error as TpmScopeCleanupError).failures;
    expect(failures.map((f) => f.handle)).toEqual([0x80000001]);
    expect(failures[0]!.error).toBeInstanceOf(TpmError);
    expect(tpm.flushed).toEqual([0x80000002, 0x80000001, 0x80000000]);
  });

  it('a handle already gone (TPM_RC_HANDLE on parameter 1) counts as flushed', async () => {
    const tpm = new FlushingTpm(() => 0x1cb);
    await expect(withTpmScope(new TpmClient(tpm), async (scope) => scope.track(0x03000000))).resolves.toBe(0x03000000);
    expect(tpm.flushed).toEqual([0x03000000]);
  });

  it('nested scopes close when their work ends, before the outer one', async () => {
    const tpm = new FlushingTpm();
    const client = new TpmClient(tpm);
    await withTpmScope(client, async (outer: TpmScope) => {
      outer.track(0x80000000);
      await outer.nested(async (inner) => {
        inner.track(0x03000000);
        outer.track(0x80000001);
      });
      expect(tpm.flushed).toEqual([0x03000000]);
    });
    expect(tpm.flushed).toEqual([0x03000000, 0x80000001, 0x80000000]);
  });
});
