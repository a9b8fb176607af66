import { readSized, type TpmReader } from '../codec/tpm-reader';
import { TpmWriter } from '../codec/tpm-writer';
import { TPM_CC } from '../constants';
import { passwordAuth } from '../client/session-auth';
import type { TpmClient } from '../client/tpm-client';
import { getTpmProperty } from './capability';
import { TPM_PT } from './capability-constants';
import { TpmAnswerError } from './tpm-answer-error';

/**
 * Part 2 §13.5 TPMS_NV_PUBLIC, kept raw: `raw` is the marshalled structure whose nameAlg hash is
 * the index's Name (Part 1 §16), so callers can check the Name the TPM reported.
 */
export interface TPMS_NV_PUBLIC {
  readonly nvIndex: number;
  readonly nameAlg: number;
  /** Part 2 §13.4 TPMA_NV. */
  readonly attributes: number;
  readonly authPolicy: Buffer;
  readonly dataSize: number;
  readonly raw: Buffer;
}

function readNvPublic(r: TpmReader): TPMS_NV_PUBLIC {
  const start = r.offset;
  const nvIndex = r.u32('nvIndex');
  const nameAlg = r.u16('nameAlg');
  const attributes = r.u32('attributes');
  const authPolicy = r.tpm2b('authPolicy', 64);
  const dataSize = r.u16('dataSize');
  return { nvIndex, nameAlg, attributes, authPolicy, dataSize, raw: r.rawSince(start) };
}

/** TPM2_NV_ReadPublic (Part 3 §31.6): the index's public area and Name; needs no authorization. */
export async function nvReadPublic(client: TpmClient, nvIndex: number): Promise<{ nvPublic: TPMS_NV_PUBLIC; name: Buffer }> {
  const response = await client.execute({ code: TPM_CC.TPM_CC_NV_ReadPublic, handles: [nvIndex] });
  const r = response.parameters;
  const nvPublic = readSized(r, 'nvPublic', readNvPublic);
  const name = r.tpm2b('nvName', 2 + 64);
  r.end();
  return { nvPublic, name };
}

/**
 * TPM_PT_NV_BUFFER_MAX is a PT_FIXED property (constant for a TPM and its firmware), so it is asked
 * once per client rather than before every read.
 */
const nvBufferMax = new WeakMap<TpmClient, Promise<number>>();

function nvChunkSize(client: TpmClient): Promise<number> {
  let size = nvBufferMax.get(client);
  if (size === undefined) {
    size = getTpmProperty(client, TPM_PT.TPM_PT_NV_BUFFER_MAX);
    // A failed ask (e.g. a transport hiccup) must not be remembered.
    size.catch(() => nvBufferMax.delete(client));
    nvBufferMax.set(client, size);
  }
  return size;
}

/**
 * The whole content of an NV index (dataSize from NV_ReadPublic), by TPM2_NV_Read (Part 3 §31.13)
 * in chunks of at most TPM_PT_NV_BUFFER_MAX. The index authorizes its own read with an empty
 * password, as EK certificate indices (TPMA_NV_AUTHREAD, empty authValue) allow.
 */
export async function nvReadAll(client: TpmClient, nvIndex: number): Promise<Buffer> {
  const { nvPublic } = await nvReadPublic(client, nvIndex);
  const chunk = await nvChunkSize(client);
  if (chunk < 1) {
    throw new TpmAnswerError('TPM2_GetCapability', `TPM_PT_NV_BUFFER_MAX is ${chunk}`);
  }
  const parts: Buffer[] = [];
  for (let offset = 0; offset < nvPublic.dataSize; ) {
    const size = Math.min(chunk, nvPublic.dataSize - offset);
    const response = await client.execute({
      code: TPM_CC.TPM_CC_NV_Read,
      handles: [nvIndex, nvIndex],
      sessions: [passwordAuth()],
      parameters: new TpmWriter().u16(size).u16(offset).toBuffer(),
    });
    const r = response.parameters;
    const data = r.tpm2b('data');
    r.end();
    if (data.length !== size) {
      throw new TpmAnswerError('TPM2_NV_Read', `asked for ${size} bytes at offset ${offset} of index 0x${nvIndex.toString(16)}, got ${data.length}`);
    }
    parts.push(data);
    offset += size;
  }
  return Buffer.concat(parts);
}
