import type { StartAttestationResponse } from '@rackseal/node-api-contracts';
import { activationProof } from '@rackseal/node-identity';
import {
  activateCredential,
  AK_TEMPLATE_RSA,
  type AttestationKey,
  createAttestationKey,
  type EkKind,
  type EndorsementKey,
  EV,
  getEndorsementKey,
  marshalTpm2bPublic,
  openTransport,
  parseEventLog,
  parsePcrSelection,
  quotePcrs,
  TPM_ALG_ID,
  TpmClient,
  type TpmScope,
  withTpmScope,
} from '@rackseal/tpm2';
import type { SwtpmMachine } from './swtpm';

/**
 * The agent's side of the enrollment protocol played in-process on a swtpm with libs/tpm2's
 * operations (EK, AK, ActivateCredential, Quote), for suites that attest machines against a
 * control plane (test/attestation.test.ts, test/policy-api.test.ts).
 */

export const b64 = (bytes: Buffer): string => bytes.toString('base64');

/** What the agent holds during one exchange. */
export interface AgentSession {
  readonly scope: TpmScope;
  readonly ek: EndorsementKey;
  readonly ak: AttestationKey;
  readonly certificate: Buffer;
  readonly akPublic: string;
}

/** Opens the swtpm, makes the EK of `kind` and a fresh AK, and runs `work` with them. */
export async function withAgent<T>(tpm: SwtpmMachine, kind: EkKind, work: (agent: AgentSession) => Promise<T>, akTemplate = AK_TEMPLATE_RSA): Promise<T> {
  const client = new TpmClient(await openTransport(tpm.device));
  try {
    return await withTpmScope(client, async (scope) => {
      const ek = await getEndorsementKey(scope, kind);
      const ak = await createAttestationKey(scope, ek, { template: akTemplate });
      const certificate = kind === 'rsa-2048' ? await tpm.rsaEkCertDer() : kind === 'ecc-p256' ? await tpm.p256EkCertDer() : await tpm.eccEkCertDer();
      return work({ scope, ek, ak, certificate, akPublic: b64(marshalTpm2bPublic(ak.public)) });
    });
  } finally {
    await client.close();
  }
}

/** ActivateCredential, the proof, and a quote of the asked selection over the nonce: the finish body. */
export async function answer(
  agent: AgentSession,
  start: StartAttestationResponse,
  options: { selection?: string; nonce?: Buffer; proofFor?: string } = {},
): Promise<{ secret: Buffer; body: { activationProof: string; quote: { attest: string; signature: string }; pcrValues: string } }> {
  const secret = await activateCredential(agent.scope, agent.ak, agent.ek, {
    credentialBlob: Buffer.from(start.credentialBlob, 'base64'),
    encryptedSecret: Buffer.from(start.encryptedSecret, 'base64'),
  });
  const nonce = Buffer.from(start.nonce, 'base64');
  const selection = options.selection ?? `${start.pcrSelection.bank}:${start.pcrSelection.pcrs.join(',')}`;
  const quote = await quotePcrs(agent.scope, agent.ak, parsePcrSelection(selection), options.nonce ?? nonce);
  return {
    secret,
    body: {
      activationProof: b64(activationProof(secret, options.proofFor ?? start.registrationId, nonce)),
      quote: { attest: b64(quote.message), signature: b64(quote.signatureBytes) },
      pcrValues: b64(Buffer.concat(quote.pcrValues)),
    },
  };
}

/** Extends a swtpm's SHA-256 PCRs with the log's events, as firmware measuring that boot would (swtpm PCR_Extend). */
export async function bootWith(tpm: SwtpmMachine, logBytes: Buffer): Promise<void> {
  for (const event of parseEventLog(logBytes).events) {
    if (event.eventType === EV.EV_NO_ACTION) {
      continue;
    }
    const digest = event.digests.find((d) => d.hashAlg === TPM_ALG_ID.TPM_ALG_SHA256)!;
    await tpm.extendPcr(event.pcrIndex, 'sha256', digest.digest.toString('hex'));
  }
}
