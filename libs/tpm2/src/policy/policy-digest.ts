import type { TPML_PCR_SELECTION } from '../structures/tpml-pcr-selection';
import { pcrDigest } from './pcr-values';
import {
  policyAuthorize,
  policyAuthorizeNV,
  policyCommandCode,
  policyOr,
  policyPcr,
  policySecret,
  policyZero,
} from './policy-commands';

/**
 * A policy digest computed the way a trial session accumulates it:
 *
 *   new PolicyDigest(TPM_ALG_SHA256).pcr(parsePcrSelection('sha256:0,7'), values).digest
 *
 * Each step is the function of the same name in policy-commands.ts. Steps that replace the digest
 * (authorize, or) do so here too.
 */
export class PolicyDigest {
  private value: Buffer;

  constructor(
    readonly hashAlg: number,
    initial?: Buffer,
  ) {
    this.value = initial === undefined ? policyZero(hashAlg) : Buffer.from(initial);
  }

  get digest(): Buffer {
    return Buffer.from(this.value);
  }

  /** TPM2_PolicyPCR with the expected values, one per selected PCR in selection order. */
  pcr(selection: TPML_PCR_SELECTION, values: readonly Buffer[]): this {
    return this.pcrWithDigest(selection, pcrDigest(this.hashAlg, selection, values));
  }

  /** TPM2_PolicyPCR with a pcrDigest already computed (with this policy's hash). */
  pcrWithDigest(selection: TPML_PCR_SELECTION, digest: Buffer): this {
    this.value = policyPcr(this.hashAlg, this.value, selection, digest);
    return this;
  }

  /** TPM2_PolicySecret: authObjectName is the entity's Name (a hierarchy's 4-byte handle). */
  secret(authObjectName: Buffer, policyRef?: Buffer): this {
    this.value = policySecret(this.hashAlg, this.value, authObjectName, policyRef);
    return this;
  }

  /** TPM2_PolicyAuthorize: resets the digest, then binds keySign's Name and policyRef. */
  authorize(keySignName: Buffer, policyRef?: Buffer): this {
    this.value = policyAuthorize(this.hashAlg, keySignName, policyRef);
    return this;
  }

  /** TPM2_PolicyOR over `branches` (the current digest is expected to be one of them). */
  or(branches: readonly Buffer[]): this {
    this.value = policyOr(this.hashAlg, branches);
    return this;
  }

  /** TPM2_PolicyCommandCode. */
  commandCode(code: number): this {
    this.value = policyCommandCode(this.hashAlg, this.value, code);
    return this;
  }

  /** TPM2_PolicyAuthorizeNV. */
  authorizeNV(nvIndexName: Buffer): this {
    this.value = policyAuthorizeNV(this.hashAlg, this.value, nvIndexName);
    return this;
  }
}
