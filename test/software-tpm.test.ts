/**
 * The software TPM the attestation benchmark's load generator plays (test/support/software-tpm.ts)
 * answers what the server checks: ActivateCredential recovers exactly the secret libs/tpm2's
 * makeCredential protected (and refuses, as a TPM does, a blob made for another EK or AK or
 * altered in transit), and its quotes pass libs/tpm2's verifyQuote, which the finish call runs.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { makeCredential, objectName, parsePcrSelection, unmarshalTpm2bPublic, verifyQuote } from '@rackseal/tpm2';
import { SoftwareActivationError, SoftwareTpm } from './support/software-tpm';

describe('software TPM (benchmark load generator)', () => {
  const tpm = new SoftwareTpm();
  const selection = parsePcrSelection('sha256:0,1,2,3,4,5,6,7');

  const rcOf = (work: () => unknown): string => {
    try {
      work();
    } catch (error) {
      if (error instanceof SoftwareActivationError) {
        return error.rc;
      }
      throw error;
    }
    return 'no error';
  };

  it('ActivateCredential recovers the secret of libs/tpm2 makeCredential for its EK and AK', () => {
    for (const length of [1, 20, 32]) {
      const secret = randomBytes(length);
      const made = makeCredential(tpm.ekPublic, tpm.akName, secret);
      expect(tpm.activateCredential(made.credentialBlob, made.encryptedSecret).toString('hex')).toBe(secret.toString('hex'));
    }
  });

  it('refuses with TPM_RC_INTEGRITY a credential made for another AK, for another EK, or altered', () => {
    const secret = randomBytes(32);
    const otherAk = new SoftwareTpm();
    const forOtherAk = makeCredential(tpm.ekPublic, otherAk.akName, secret);
    expect(rcOf(() => tpm.activateCredential(forOtherAk.credentialBlob, forOtherAk.encryptedSecret))).toBe('TPM_RC_INTEGRITY');
    const forOtherEk = makeCredential(otherAk.ekPublic, tpm.akName, secret);
    expect(rcOf(() => tpm.activateCredential(forOtherEk.credentialBlob, forOtherEk.encryptedSecret))).toBe('TPM_RC_INTEGRITY');
    const made = makeCredential(tpm.ekPublic, tpm.akName, secret);
    const altered = Buffer.from(made.credentialBlob);
    altered[altered.length - 1]! ^= 1;
    expect(rcOf(() => tpm.activateCredential(altered, made.encryptedSecret))).toBe('TPM_RC_INTEGRITY');
  });

  it('refuses with TPM_RC_ECC_POINT an ephemeral point that is not on P-256', () => {
    const made = makeCredential(tpm.ekPublic, tpm.akName, randomBytes(32));
    const offCurve = Buffer.from(made.encryptedSecret);
    offCurve[offCurve.length - 1]! ^= 1; // last byte of y
    expect(rcOf(() => tpm.activateCredential(made.credentialBlob, offCurve))).toBe('TPM_RC_ECC_POINT');
  });

  it('its quotes pass verifyQuote with its AK, nonce and PCR values; another nonce or a later extend does not', () => {
    const akPublic = unmarshalTpm2bPublic(tpm.akPublicBytes);
    expect(objectName(akPublic).equals(tpm.akName)).toBe(true);
    const nonce = randomBytes(32);
    const split = (values: Buffer) => Array.from({ length: values.length / 32 }, (_, i) => values.subarray(i * 32, (i + 1) * 32));
    const quote = tpm.quote(selection, nonce);
    const verified = verifyQuote({ akPublic, attest: quote.attest, signature: quote.signature, nonce, pcrValues: split(quote.pcrValues), selection });
    expect(verified).toMatchObject({ ok: true, akAttributesChecked: true });
    expect(verified.ok && verified.pcrs.map((p) => `${p.index}=${p.value.toString('hex')}`)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => `${i}=${'00'.repeat(32)}`));

    expect(verifyQuote({ akPublic, attest: quote.attest, signature: quote.signature, nonce: randomBytes(32), pcrValues: split(quote.pcrValues), selection })).toMatchObject({
      ok: false,
      reason: 'nonce-mismatch',
    });
    const before = tpm.quote(selection, nonce).pcrValues;
    tpm.extend(7, randomBytes(32));
    const after = tpm.quote(selection, nonce);
    expect(verifyQuote({ akPublic, attest: after.attest, signature: after.signature, nonce, pcrValues: split(before), selection })).toMatchObject({
      ok: false,
      reason: 'pcr-digest-mismatch',
    });
    tpm.reboot();
  });

  it('an EK given by the caller keeps its key: the EK public is the one of that key', () => {
    const ek = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = ek.publicKey.export({ format: 'jwk' });
    const withEk = new SoftwareTpm(ek);
    expect(withEk.ekPublic.unique.x.toString('base64url')).toBe(jwk.x);
    expect(withEk.ekPublic.unique.y.toString('base64url')).toBe(jwk.y);
  });
});
