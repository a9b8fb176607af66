import { TpmParseError } from '../codec/tpm-parse-error';
import { marshal, TpmWriter } from '../codec/tpm-writer';
import { TPM_ALG_ID, TPM_GENERATED_VALUE, TPM_ST } from '../constants';
import { passwordAuth } from '../client/session-auth';
import { TpmClient } from '../client/tpm-client';
import type { TpmTransport } from '../client/transport';
import { marshalTpm2bAttest } from '../structures/tpms-attest';
import { parsePcrSelection } from '../structures/tpml-pcr-selection';
import { tpm2Quote, tpm2RsaDecrypt } from './keys-and-attestation';

/** Answers every command with `parameters` after one session acknowledgement slot. */
class FakeTpm implements TpmTransport {
  readonly description = 'fake';
  readonly sent: Buffer[] = [];
  constructor(private readonly parameters: Buffer) {}

  async transmit(command: Buffer): Promise<Buffer> {
    this.sent.push(command);
    const content = marshal((w) => w.u32(this.parameters.length).bytes(this.parameters).bytes(Buffer.from('0000000000', 'hex')));
    return new TpmWriter().u16(0x8002).u32(10 + content.length).u32(0).bytes(content).toBuffer();
  }

  async close(): Promise<void> {}
}

const selection = parsePcrSelection('sha256:0,7');
const attest = marshalTpm2bAttest({
  magic: TPM_GENERATED_VALUE,
  type: TPM_ST.TPM_ST_ATTEST_QUOTE,
  qualifiedSigner: Buffer.alloc(34, 1),
  extraData: Buffer.from('nonce'),
  clockInfo: { clock: 1n, resetCount: 2, restartCount: 3, safe: true },
  firmwareVersion: 4n,
  attested: { pcrSelect: selection, pcrDigest: Buffer.alloc(32, 5) },
});
// TPMT_SIGNATURE: RSASSA, SHA-256, a 4-byte "signature" (sizes are the TPM's business, not the parser's).
const signature = Buffer.from('0014' + '000b' + '0004' + 'deadbeef', 'hex');

describe('attestation and key commands', () => {
  it('TPM2_Quote: qualifyingData, scheme NULL, the selection; answers the TPMS_ATTEST and the TPMT_SIGNATURE bytes as sent', async () => {
    const tpm = new FakeTpm(Buffer.concat([attest, signature]));
    const quote = await tpm2Quote(new TpmClient(tpm), 0x80000001, passwordAuth(), Buffer.from('nonce'), selection);
    expect(tpm.sent[0]!.subarray(27).toString('hex')).toBe('0005' + Buffer.from('nonce').toString('hex') + '0010' + '00000001000b03810000');
    expect(quote.attest.raw.equals(attest.subarray(2))).toBe(true);
    expect(quote.signatureBytes.equals(signature)).toBe(true);
    expect(quote.signature).toEqual({ sigAlg: TPM_ALG_ID.TPM_ALG_RSASSA, signature: { hash: TPM_ALG_ID.TPM_ALG_SHA256, sig: Buffer.from('deadbeef', 'hex') } });
  });

  it('a quote answer with bytes after the signature is refused', async () => {
    const tpm = new FakeTpm(Buffer.concat([attest, signature, Buffer.alloc(1)]));
    await expect(tpm2Quote(new TpmClient(tpm), 0x80000001, passwordAuth(), Buffer.alloc(0), selection)).rejects.toBeInstanceOf(TpmParseError);
  });

  it('TPM2_RSA_Decrypt: cipherText, TPMT_RSA_DECRYPT (OAEP + hash), label', async () => {
    const tpm = new FakeTpm(marshal((w) => w.tpm2b(Buffer.from('hello'))));
    const message = await tpm2RsaDecrypt(new TpmClient(tpm), 0x80000002, passwordAuth(), Buffer.alloc(256, 1), { scheme: TPM_ALG_ID.TPM_ALG_OAEP, hashAlg: TPM_ALG_ID.TPM_ALG_SHA256 }, Buffer.from('l\0'));
    expect(message.toString()).toBe('hello');
    const params = tpm.sent[0]!.subarray(27);
    expect(params.subarray(0, 2).readUInt16BE(0)).toBe(256);
    expect(params.subarray(258).toString('hex')).toBe('0017' + '000b' + '0002' + '6c00');
  });
});
