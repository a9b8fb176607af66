/**
 * Why the agent refuses to unwrap an envelope before, or instead of, asking its TPM. Each names
 * what does not match (Names, hashes, group, epoch, counts) and never a key, a PCR-sealed payload
 * or a content key. The envelope's own refusals (format, size, GCM) are libs/wrapping's.
 */
export type UnwrapRefusalCode =
  | 'unwrap.wrong-recipient'
  | 'unwrap.wrong-delivery'
  | 'unwrap.no-certified-key'
  | 'unwrap.no-approvals'
  | 'unwrap.approvals-mismatch'
  | 'unwrap.signer-mismatch'
  | 'unwrap.no-approval';

export class UnwrapRefusal extends Error {
  constructor(
    readonly code: UnwrapRefusalCode,
    message: string,
  ) {
    super(message);
    this.name = 'UnwrapRefusal';
  }
}

/** The envelope is addressed to another key or EK: another machine's, or this machine's former key. */
export class EnvelopeRecipientError extends UnwrapRefusal {
  constructor(binding: string, expected: string, actual: string) {
    super('unwrap.wrong-recipient', `the ${binding} envelope is for ${actual}, not this machine's ${expected}: it was wrapped for another machine or key (not sent to the TPM)`);
    this.name = 'EnvelopeRecipientError';
  }
}

/** No pcr-sealed envelope opens when none of the approvals is of the PCR values the TPM holds now. */
export class NoApprovalError extends UnwrapRefusal {
  constructor(group: string, epoch: number, checked: number) {
    super('unwrap.no-approval', `no approval for the current PCR state (group ${JSON.stringify(group)}, epoch ${epoch}, ${checked} approval(s) checked)`);
    this.name = 'NoApprovalError';
  }
}
