import { constants, createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { TPM_ALG_ID, TPM_GENERATED_VALUE, TPM_ST, TPMA_OBJECT } from '../constants';
import { publicKeyFromTpmt, tpmtPublicFromKey } from '../keys';
import { objectName } from '../names';
import { marshalTpmsAttest, type TPMS_ATTEST, unmarshalTpmsAttest } from '../structures/tpms-attest';
import { marshalTpmtSignature, type TPMT_SIGNATURE } from '../structures/tpmt-signature';
import { parsePcrSelection } from '../structures/tpml-pcr-selection';
import { type ParsedPublic, type TPMT_PUBLIC, unmarshalTpm2bPublic } from '../structures/tpmt-public';
import { AK_TEMPLATE_ECC, AK_TEMPLATE_RSA } from '../templates';
import { verifyCertify } from './certify';
import { splitPcrValues } from '../structures/tpml-pcr-selection';
import { verifyQuote, type QuoteInput } from './quote';
import vectors from './swtpm-vectors.json';

// Real quotes and a certify from tpm2-tools on swtpm (swtpm-vectors.json says how each was made).
const hex = (text: string): Buffer => Buffer.from(text, 'hex');
const RSASSA_AK = unmarshalTpm2bPublic(hex(vectors.rsassaAk.tpm2bPublic));
const ECDSA_AK = unmarshalTpm2bPublic(hex(vectors.ecdsaAk.tpm2bPublic));
const RSAPSS_AK = unmarshalTpm2bPublic(hex(vectors.rsapssAk.tpm2bPublic));

function quoteInput(vector: typeof vectors.rsassaQuote, akPublic: ParsedPublic | KeyObject): QuoteInput {
  const selection = parsePcrSelection(vector.selection);
  return {
    akPublic,
    attest: hex(vector.msg),
    signature: hex(vector.sig),
    nonce: hex(vector.nonce),
    selection,
    pcrValues: splitPcrValues(selection, hex(vector.pcrs))!,
  };
}

const RSASSA_QUOTE = quoteInput(vectors.rsassaQuote, RSASSA_AK);
const ECDSA_QUOTE = quoteInput(vectors.ecdsaQuote, ECDSA_AK);
const RSAPSS_QUOTE = quoteInput(vectors.rsapssQuote, RSAPSS_AK);

/** A software "AK": a TPMT_PUBLIC with AK attributes around a key we hold, to sign what no TPM would. */
function softwareAk(kind: 'rsa' | 'ec'): { privateKey: KeyObject; publicKey: KeyObject; pub: TPMT_PUBLIC } {
  if (kind === 'rsa') {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    return { privateKey, publicKey, pub: tpmtPublicFromKey(publicKey, AK_TEMPLATE_RSA) };
  }
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, publicKey, pub: tpmtPublicFromKey(publicKey, AK_TEMPLATE_ECC) };
}

const sha = (hash: 'sha1' | 'sha256', values: readonly Buffer[]): Buffer => {
  const h = createHash(hash);
  values.forEach((v) => h.update(v));
  return h.digest();
};

function rsassa(privateKey: KeyObject, message: Buffer): TPMT_SIGNATURE {
  return { sigAlg: TPM_ALG_ID.TPM_ALG_RSASSA, signature: { hash: TPM_ALG_ID.TPM_ALG_SHA256, sig: sign('sha256', message, privateKey) } };
}

const SOFT_RSA = softwareAk('rsa');
const SOFT_EC = softwareAk('ec');
const SELECTION = parsePcrSelection('sha256:0,7');
const PCR_VALUES = [Buffer.alloc(32, 1), Buffer.alloc(32, 2)];

function softwareQuote(overrides: Partial<TPMS_ATTEST> = {}): Buffer {
  const attest = {
    magic: TPM_GENERATED_VALUE,
    type: TPM_ST.TPM_ST_ATTEST_QUOTE,
    qualifiedSigner: objectName(SOFT_RSA.pub),
    extraData: Buffer.from('nonce'),
    clockInfo: { clock: 1n, resetCount: 0, restartCount: 0, safe: true },
    firmwareVersion: 0n,
    attested: { pcrSelect: SELECTION, pcrDigest: sha('sha256', PCR_VALUES) },
    ...overrides,
  } as TPMS_ATTEST;
  return marshalTpmsAttest(attest);
}

describe('verifyQuote', () => {
  it('accepts tpm2_quote quotes by RSASSA (two banks), ECDSA and RSAPSS AKs', () => {
    const rsa = verifyQuote(RSASSA_QUOTE);
    expect(rsa).toMatchObject({ ok: true, akAttributesChecked: true });
    expect(rsa.ok && rsa.pcrs.map((p) => `${p.bank}:${p.index}`)).toEqual(['sha256:0', 'sha256:7', 'sha1:1']);
    expect(rsa.ok && rsa.attest.qualifiedSigner.toString('hex')).toBe('000b8eb0935a8e767a38814f2746f5c97ab7f39cee745e4bd27b59d916263bf547ca');
    expect(verifyQuote(ECDSA_QUOTE)).toMatchObject({ ok: true });
    expect(verifyQuote(RSAPSS_QUOTE)).toMatchObject({ ok: true });
  });

  it('accepts a bare public key but says the AK attributes were not checked', () => {
    expect(verifyQuote({ ...RSASSA_QUOTE, akPublic: publicKeyFromTpmt(RSASSA_AK) })).toMatchObject({ ok: true, akAttributesChecked: false });
    expect(verifyQuote({ ...ECDSA_QUOTE, akPublic: publicKeyFromTpmt(ECDSA_AK) })).toMatchObject({ ok: true, akAttributesChecked: false });
    expect(verifyQuote({ ...RSASSA_QUOTE, akPublic: SOFT_RSA.publicKey })).toMatchObject({ ok: false, reason: 'signature-invalid' });
    expect(verifyQuote({ ...ECDSA_QUOTE, akPublic: publicKeyFromTpmt(RSASSA_AK) })).toEqual({
      ok: false,
      reason: 'scheme-mismatch',
      message: 'TPM_ALG_ECDSA signature cannot come from rsa key',
    });
  });

  it('refuses a changed nonce, PCR value, attest byte, AK, selection or scheme with the exact reason', () => {
    expect(verifyQuote({ ...RSASSA_QUOTE, nonce: hex('0102030406') })).toMatchObject({ ok: false, reason: 'nonce-mismatch' });
    expect(verifyQuote({ ...RSASSA_QUOTE, nonce: hex('01020304') })).toMatchObject({ ok: false, reason: 'nonce-mismatch' });
    expect(verifyQuote({ ...RSAPSS_QUOTE, nonce: hex('00') })).toMatchObject({ ok: false, reason: 'nonce-mismatch' });

    const changedPcr = RSASSA_QUOTE.pcrValues.map((v, i) => (i === 2 ? Buffer.alloc(20, 0xff) : v));
    expect(verifyQuote({ ...RSASSA_QUOTE, pcrValues: changedPcr })).toMatchObject({ ok: false, reason: 'pcr-digest-mismatch' });

    for (const offset of [0, 5, 45, 70, 100, 123]) {
      const flipped = Buffer.from(RSASSA_QUOTE.attest);
      flipped[offset]! ^= 0x01;
      expect(verifyQuote({ ...RSASSA_QUOTE, attest: flipped })).toMatchObject({ ok: false, reason: 'signature-invalid' });
    }
    expect(verifyQuote({ ...RSASSA_QUOTE, akPublic: SOFT_RSA.pub })).toMatchObject({ ok: false, reason: 'signature-invalid' });
    expect(verifyQuote({ ...RSASSA_QUOTE, akPublic: ECDSA_AK })).toMatchObject({ ok: false, reason: 'scheme-mismatch' });
    expect(verifyQuote({ ...RSASSA_QUOTE, akPublic: RSAPSS_AK })).toMatchObject({ ok: false, reason: 'scheme-mismatch' });

    const otherSelection = parsePcrSelection('sha256:0,8+sha1:1');
    expect(verifyQuote({ ...RSASSA_QUOTE, selection: otherSelection })).toMatchObject({
      ok: false,
      reason: 'selection-mismatch',
      message: 'quote covers sha256:0,7+sha1:1, expected sha256:0,8+sha1:1',
    });
    const reordered = parsePcrSelection('sha1:1+sha256:0,7');
    expect(verifyQuote({ ...RSASSA_QUOTE, selection: reordered })).toMatchObject({ ok: false, reason: 'selection-mismatch' });
    expect(verifyQuote({ ...RSASSA_QUOTE, pcrValues: RSASSA_QUOTE.pcrValues.slice(0, 2) })).toMatchObject({ ok: false, reason: 'selection-mismatch' });
    const wrongSize = [RSASSA_QUOTE.pcrValues[0]!, RSASSA_QUOTE.pcrValues[1]!, Buffer.alloc(32)];
    expect(verifyQuote({ ...RSASSA_QUOTE, pcrValues: wrongSize })).toMatchObject({
      ok: false,
      reason: 'selection-mismatch',
      message: "value supplied for sha1 PCR 1 has 32 bytes, the bank's digests have 20",
    });

    // The same RSA signature relabelled: PSS instead of PKCS#1 v1.5, or SHA-1 instead of SHA-256.
    const asPss = Buffer.from(RSASSA_QUOTE.signature as Buffer);
    asPss.writeUInt16BE(TPM_ALG_ID.TPM_ALG_RSAPSS, 0);
    expect(verifyQuote({ ...RSASSA_QUOTE, signature: asPss })).toMatchObject({ ok: false, reason: 'scheme-mismatch' });
    const asSha1 = Buffer.from(RSASSA_QUOTE.signature as Buffer);
    asSha1.writeUInt16BE(TPM_ALG_ID.TPM_ALG_SHA1, 2);
    expect(verifyQuote({ ...RSASSA_QUOTE, signature: asSha1 })).toMatchObject({ ok: false, reason: 'scheme-mismatch' });
    expect(verifyQuote({ ...ECDSA_QUOTE, signature: marshalTpmtSignature({ sigAlg: TPM_ALG_ID.TPM_ALG_NULL }) })).toMatchObject({
      ok: false,
      reason: 'unsupported-scheme',
    });
  });

  it('refuses an AK without the attributes of a restricted, TPM-bound signing key', () => {
    const unrestricted = { ...RSASSA_AK, objectAttributes: RSASSA_AK.objectAttributes & ~TPMA_OBJECT.restricted };
    expect(verifyQuote({ ...RSASSA_QUOTE, akPublic: unrestricted })).toEqual({
      ok: false,
      reason: 'ak-attributes',
      message: 'AK must have restricted set',
    });
  });

  it('refuses malformed signatures and TPMS_ATTEST as malformed, naming the field', () => {
    expect(verifyQuote({ ...RSASSA_QUOTE, signature: Buffer.from('0014000b01', 'hex') })).toMatchObject({
      ok: false,
      reason: 'malformed',
      message: 'signature: TPMS_SIGNATURE_RSA.sig.size at offset 4: needs 2 byte(s), 1 left',
    });
    const garbage = Buffer.from('not a TPMS_ATTEST at all');
    expect(verifyQuote({ ...RSASSA_QUOTE, akPublic: SOFT_RSA.pub, attest: garbage, signature: rsassa(SOFT_RSA.privateKey, garbage) })).toMatchObject({
      ok: false,
      reason: 'malformed',
    });
  });

  it('refuses signed data that is not TPM-generated (bad magic) or not a quote (wrong type)', () => {
    const forged = softwareQuote({ magic: 0x46414b45 });
    expect(verifyQuote({ akPublic: SOFT_RSA.pub, attest: forged, signature: rsassa(SOFT_RSA.privateKey, forged), nonce: Buffer.from('nonce'), pcrValues: PCR_VALUES })).toMatchObject({
      ok: false,
      reason: 'bad-magic',
    });
    const certify = Buffer.from(vectors.certify.msg, 'hex');
    expect(verifyQuote({ ...RSASSA_QUOTE, attest: certify, signature: hex(vectors.certify.sig), nonce: hex('00ff55aa') })).toEqual({
      ok: false,
      reason: 'wrong-type',
      message: 'attestation is TPM_ST_ATTEST_CERTIFY, expected TPM_ST_ATTEST_QUOTE',
    });
  });

  it('recomputes pcrDigest with the signing scheme’s hash, not the banks’', () => {
    const sha1Bank = parsePcrSelection('sha1:0,7');
    const values = [Buffer.alloc(20, 1), Buffer.alloc(20, 2)];
    const quoteWith = (pcrDigest: Buffer): Buffer => softwareQuote({ attested: { pcrSelect: sha1Bank, pcrDigest } } as Partial<TPMS_ATTEST>);
    const input = { akPublic: SOFT_RSA.pub, nonce: Buffer.from('nonce'), pcrValues: values, selection: sha1Bank };
    const right = quoteWith(sha('sha256', values));
    expect(verifyQuote({ ...input, attest: right, signature: rsassa(SOFT_RSA.privateKey, right) })).toMatchObject({ ok: true });
    const bankHash = quoteWith(sha('sha1', values));
    expect(verifyQuote({ ...input, attest: bankHash, signature: rsassa(SOFT_RSA.privateKey, bankHash) })).toMatchObject({
      ok: false,
      reason: 'pcr-digest-mismatch',
    });
  });

  it('accepts RSAPSS with salt = hash length and with the maximum salt (hardware variants)', () => {
    const pssTemplate = { ...AK_TEMPLATE_RSA, parameters: { ...AK_TEMPLATE_RSA.parameters, scheme: { scheme: TPM_ALG_ID.TPM_ALG_RSAPSS, hashAlg: TPM_ALG_ID.TPM_ALG_SHA256 } } };
    const ak = tpmtPublicFromKey(SOFT_RSA.publicKey, pssTemplate);
    const message = softwareQuote();
    for (const saltLength of [32, constants.RSA_PSS_SALTLEN_MAX_SIGN, 0]) {
      const sig = sign('sha256', message, { key: SOFT_RSA.privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength });
      const signature: TPMT_SIGNATURE = { sigAlg: TPM_ALG_ID.TPM_ALG_RSAPSS, signature: { hash: TPM_ALG_ID.TPM_ALG_SHA256, sig } };
      expect(verifyQuote({ akPublic: ak, attest: message, signature, nonce: Buffer.from('nonce'), pcrValues: PCR_VALUES })).toMatchObject({ ok: true });
    }
    // A PKCS#1 v1.5 signature relabelled as PSS does not verify as PSS.
    const relabelled: TPMT_SIGNATURE = {
      sigAlg: TPM_ALG_ID.TPM_ALG_RSAPSS,
      signature: { hash: TPM_ALG_ID.TPM_ALG_SHA256, sig: sign('sha256', message, SOFT_RSA.privateKey) },
    };
    expect(verifyQuote({ akPublic: ak, attest: message, signature: relabelled, nonce: Buffer.from('nonce'), pcrValues: PCR_VALUES })).toMatchObject({
      ok: false,
      reason: 'signature-invalid',
    });
  });

  it('accepts ECDSA on P-384 with SHA-384 (48-byte r and s)', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const template = {
      ...AK_TEMPLATE_ECC,
      parameters: { ...AK_TEMPLATE_ECC.parameters, curveID: 0x0004, scheme: { scheme: TPM_ALG_ID.TPM_ALG_ECDSA, hashAlg: TPM_ALG_ID.TPM_ALG_SHA384 } },
    };
    const ak = tpmtPublicFromKey(publicKey, template);
    const attest = softwareQuote({ qualifiedSigner: objectName(ak) });
    const p1363 = sign('sha384', attest, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    const signature: TPMT_SIGNATURE = {
      sigAlg: TPM_ALG_ID.TPM_ALG_ECDSA,
      signature: { hash: TPM_ALG_ID.TPM_ALG_SHA384, signatureR: p1363.subarray(0, 48), signatureS: p1363.subarray(48) },
    };
    const input = { akPublic: ak, attest, signature, nonce: Buffer.from('nonce'), pcrValues: PCR_VALUES };
    // The quote's pcrDigest was made with SHA-256, but this AK signs with SHA-384: the TPM would have used SHA-384.
    expect(verifyQuote(input)).toMatchObject({ ok: false, reason: 'pcr-digest-mismatch' });
    const right = softwareQuote({
      qualifiedSigner: objectName(ak),
      attested: { pcrSelect: SELECTION, pcrDigest: createHash('sha384').update(Buffer.concat(PCR_VALUES)).digest() },
    } as Partial<TPMS_ATTEST>);
    const rightSig = sign('sha384', right, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    expect(
      verifyQuote({
        ...input,
        attest: right,
        signature: { ...signature, signature: { hash: TPM_ALG_ID.TPM_ALG_SHA384, signatureR: rightSig.subarray(0, 48), signatureS: rightSig.subarray(48) } },
      }),
    ).toMatchObject({ ok: true });
  });

  it('accepts ECDSA r and s with dropped or extra leading zero bytes', () => {
    const message = softwareQuote({ qualifiedSigner: objectName(SOFT_EC.pub) });
    let shortR: Buffer | undefined;
    for (let i = 0; i < 5000 && shortR === undefined; i += 1) {
      const sig = sign('sha256', message, { key: SOFT_EC.privateKey, dsaEncoding: 'ieee-p1363' });
      if (sig[0] === 0) {
        shortR = sig;
      }
    }
    expect(shortR).toBeDefined();
    const p1363 = shortR!;
    const ecdsa = (r: Buffer, s: Buffer): TPMT_SIGNATURE => ({
      sigAlg: TPM_ALG_ID.TPM_ALG_ECDSA,
      signature: { hash: TPM_ALG_ID.TPM_ALG_SHA256, signatureR: r, signatureS: s },
    });
    const input = { akPublic: SOFT_EC.pub, attest: message, nonce: Buffer.from('nonce'), pcrValues: PCR_VALUES };
    const r = p1363.subarray(0, 32);
    const s = p1363.subarray(32);
    expect(verifyQuote({ ...input, signature: ecdsa(r.subarray(1), s) })).toMatchObject({ ok: true });
    expect(verifyQuote({ ...input, signature: ecdsa(Buffer.concat([Buffer.alloc(2), r]), s) })).toMatchObject({ ok: true });
    expect(verifyQuote({ ...input, signature: ecdsa(Buffer.concat([Buffer.from([1]), r]), s) })).toMatchObject({
      ok: false,
      reason: 'signature-invalid',
      message: 'ECDSA r or s is longer than the 32-byte curve order',
    });
  });
});

describe('verifyCertify', () => {
  const certify = {
    akPublic: RSASSA_AK,
    attest: hex(vectors.certify.msg),
    signature: hex(vectors.certify.sig),
    nonce: hex(vectors.certify.nonce),
    certifiedPublic: unmarshalTpm2bPublic(hex(vectors.certify.certifiedTpm2bPublic)).raw,
  };

  it('accepts a tpm2_certify attestation of the public area tpm2_readpublic wrote', () => {
    const result = verifyCertify(certify);
    expect(result).toMatchObject({ ok: true, akAttributesChecked: true });
    expect(result.ok && objectName(result.certified).toString('hex')).toBe(vectors.certify.certifiedName);
    expect(result.ok && unmarshalTpmsAttest(certify.attest).type).toBe(TPM_ST.TPM_ST_ATTEST_CERTIFY);
  });

  it('refuses another public area, another nonce, a quote, a tampered attest and a malformed public area', () => {
    expect(verifyCertify({ ...certify, certifiedPublic: ECDSA_AK })).toMatchObject({ ok: false, reason: 'name-mismatch' });
    expect(verifyCertify({ ...certify, nonce: Buffer.alloc(0) })).toMatchObject({ ok: false, reason: 'nonce-mismatch' });
    expect(verifyCertify({ ...certify, attest: RSASSA_QUOTE.attest, signature: RSASSA_QUOTE.signature })).toMatchObject({
      ok: false,
      reason: 'wrong-type',
    });
    const flipped = Buffer.from(certify.attest);
    flipped[flipped.length - 1]! ^= 0x80;
    expect(verifyCertify({ ...certify, attest: flipped })).toMatchObject({ ok: false, reason: 'signature-invalid' });
    expect(verifyCertify({ ...certify, certifiedPublic: certify.certifiedPublic.subarray(1) })).toMatchObject({ ok: false, reason: 'malformed' });
    expect(verifyCertify({ ...certify, akPublic: ECDSA_AK })).toMatchObject({ ok: false, reason: 'scheme-mismatch' });
  });
});
