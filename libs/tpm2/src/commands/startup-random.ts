import { TpmWriter } from '../codec/tpm-writer';
import { TPM_CC } from '../constants';
import { TpmError } from '../client/tpm-errors';
import type { TpmClient } from '../client/tpm-client';
import { TpmAnswerError } from './tpm-answer-error';

/** Part 2 §6.10 TPM_SU: how TPM2_Startup treats the state saved by TPM2_Shutdown. */
export const TPM_SU = {
  /** Reset: PCRs to their defaults, transient objects and sessions gone. */
  TPM_SU_CLEAR: 0x0000,
  /** Resume from a TPM2_Shutdown(STATE): PCRs and saved sessions restored. */
  TPM_SU_STATE: 0x0001,
} as const;

/**
 * TPM2_Startup (Part 3 §9.3). Firmware or the kernel normally starts the TPM before we run; then
 * the TPM answers TPM_RC_INITIALIZE, which means exactly "already started" and is not an error
 * here. Resolves true when this call did start it.
 */
export async function startup(client: TpmClient, type: 'clear' | 'state' = 'clear'): Promise<boolean> {
  try {
    const response = await client.execute({
      code: TPM_CC.TPM_CC_Startup,
      parameters: new TpmWriter().u16(type === 'clear' ? TPM_SU.TPM_SU_CLEAR : TPM_SU.TPM_SU_STATE).toBuffer(),
    });
    response.parameters.end();
    return true;
  } catch (error) {
    if (error instanceof TpmError && error.is('TPM_RC_INITIALIZE')) {
      return false;
    }
    throw error;
  }
}

/**
 * `size` random bytes from the TPM's RNG by TPM2_GetRandom (Part 3 §16.1). One call yields at most
 * the size of the TPM's largest digest (Part 3 §16.1.1), so larger requests loop.
 */
export async function getRandom(client: TpmClient, size: number): Promise<Buffer> {
  if (!Number.isInteger(size) || size < 0) {
    throw new RangeError(`getRandom: ${size} is not a byte count`);
  }
  const parts: Buffer[] = [];
  for (let got = 0; got < size; ) {
    const want = Math.min(size - got, 0xffff);
    const response = await client.execute({ code: TPM_CC.TPM_CC_GetRandom, parameters: new TpmWriter().u16(want).toBuffer() });
    const r = response.parameters;
    const bytes = r.tpm2b('randomBytes');
    r.end();
    if (bytes.length === 0 || bytes.length > want) {
      throw new TpmAnswerError('TPM2_GetRandom', `asked for ${want} bytes, got ${bytes.length}`);
    }
    parts.push(bytes);
    got += bytes.length;
  }
  return Buffer.concat(parts, size);
}
