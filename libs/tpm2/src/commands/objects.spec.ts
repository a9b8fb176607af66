import { TpmParseError } from '../codec/tpm-parse-error';
import { marshal } from '../codec/tpm-writer';
import { TPM_RH } from '../constants';
import { passwordAuth } from '../client/session-auth';
import { TpmClient } from '../client/tpm-client';
import { FakeTpm } from '../testing/fake-response';
import { objectName } from '../names';
import { EK_TEMPLATE_RSA_L1 } from '../templates';
import { marshalTpm2bPublic, marshalTpmtPublic } from '../structures/tpmt-public';
import { tpm2FlushContext } from './context-management';
import { tpm2CreatePrimary, tpm2Load, tpm2ReadPublic } from './objects';
import { TpmAnswerError } from './tpm-answer-error';


const EK = { ...EK_TEMPLATE_RSA_L1, unique: Buffer.alloc(256, 0xab) };

/** CreatePrimary's response parameters after the handle (Part 3 §24.1). */
function createPrimaryParameters(name: Buffer): Buffer {
  return marshal((w) =>
    w
      .bytes(marshalTpm2bPublic(EK))
      .tpm2b(Buffer.from('00', 'hex')) // creationData (opaque here)
      .tpm2b(Buffer.alloc(32, 1)) // creationHash
      .u16(0x8021).u32(TPM_RH.TPM_RH_ENDORSEMENT).tpm2b(Buffer.alloc(32, 2)) // creationTicket
      .tpm2b(name),
  );
}

describe('object commands (Part 3 §12, §24, §28)', () => {
  it('TPM2_CreatePrimary is framed as Part 1 §18 and Part 3 §24.1 say: handle, empty password session, parameters', async () => {
    const tpm = new FakeTpm(() => ({ handles: [0x80000000], parameters: createPrimaryParameters(objectName(EK)) }));
    const result = await tpm2CreatePrimary(new TpmClient(tpm), TPM_RH.TPM_RH_ENDORSEMENT, passwordAuth(), EK_TEMPLATE_RSA_L1);
    const expected = Buffer.concat([
      Buffer.from('8002', 'hex'),
      Buffer.from([0, 0, 0, 0]), // size, patched below
      Buffer.from('00000131' + '4000000b' + '00000009' + '40000009000000' + '0000', 'hex'),
      Buffer.from('000400000000', 'hex'), // TPM2B_SENSITIVE_CREATE: empty userAuth and data
      marshalTpm2bPublic(EK_TEMPLATE_RSA_L1),
      Buffer.from('0000' + '00000000', 'hex'), // outsideInfo, creationPCR
    ]);
    expected.writeUInt32BE(expected.length, 2);
    expect(tpm.sent[0]!.toString('hex')).toBe(expected.toString('hex'));
    expect(marshalTpm2bPublic(EK_TEMPLATE_RSA_L1).readUInt16BE(0)).toBe(314);
    expect(result.objectHandle).toBe(0x80000000);
    expect(result.outPublic.raw.equals(marshalTpmtPublic(EK))).toBe(true);
    expect(result.creationTicket).toEqual({ tag: 0x8021, hierarchy: TPM_RH.TPM_RH_ENDORSEMENT, digest: Buffer.alloc(32, 2) });
  });

  it('a Name that is not H(outPublic) is a TpmAnswerError, and the object is flushed before the error propagates', async () => {
    const tpm = new FakeTpm((code) => (code === 0x131 ? { handles: [0x80000001], parameters: createPrimaryParameters(Buffer.alloc(34)) } : {}));
    await expect(tpm2CreatePrimary(new TpmClient(tpm), TPM_RH.TPM_RH_ENDORSEMENT, passwordAuth(), EK_TEMPLATE_RSA_L1)).rejects.toBeInstanceOf(TpmAnswerError);
    expect(tpm.codes).toEqual([0x131, 0x165]);
    expect(tpm.sent[1]!.toString('hex')).toBe('80010000000e0000016580000001');
  });

  it('TPM2_Load: trailing response bytes are a TpmParseError and the loaded handle is flushed', async () => {
    const tpm = new FakeTpm((code) => (code === 0x157 ? { handles: [0x80000002], parameters: marshal((w) => w.tpm2b(objectName(EK)).u8(0)) } : {}));
    const priv = { integrityOuter: Buffer.alloc(32), encrypted: Buffer.alloc(10) };
    await expect(tpm2Load(new TpmClient(tpm), 0x81000001, passwordAuth(), priv, EK)).rejects.toBeInstanceOf(TpmParseError);
    expect(tpm.codes).toEqual([0x157, 0x165]);
  });

  it('TPM2_ReadPublic needs no session and returns the public area as its raw bytes', async () => {
    const tpm = new FakeTpm(() => ({ parameters: marshal((w) => w.bytes(marshalTpm2bPublic(EK)).tpm2b(objectName(EK)).tpm2b(Buffer.alloc(34, 7))) }));
    const { outPublic, name, qualifiedName } = await tpm2ReadPublic(new TpmClient(tpm), 0x81010001);
    expect(tpm.sent[0]!.toString('hex')).toBe('80010000000e0000017381010001');
    expect(outPublic.raw.equals(marshalTpmtPublic(EK))).toBe(true);
    expect(name.equals(objectName(EK))).toBe(true);
    expect(qualifiedName.equals(Buffer.alloc(34, 7))).toBe(true);
  });

  it('TPM2_FlushContext carries the handle as a parameter, so the TPM blames parameter 1', async () => {
    const tpm = new FakeTpm(() => ({ rc: 0x1cb }));
    const error = await tpm2FlushContext(new TpmClient(tpm), 0x03000000).catch((e: unknown) => e);
    expect(tpm.sent[0]!.toString('hex')).toBe('80010000000e0000016503000000');
    expect((error as { rc: unknown }).rc).toMatchObject({ name: 'TPM_RC_HANDLE', position: { kind: 'parameter', index: 1 } });
  });
});
