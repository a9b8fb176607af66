/**
 * The agent's side of the enrollment protocol, played in-process on swtpm by libs/tpm2's
 * operations (EK, AK, ActivateCredential, Quote): for the tests of the enrollment routes and of the
 * node routes behind them, which need an attested machine and the credential its agent derives.
 */
import type { INestApplication } from '@nestjs/common';
import { nodeApiPath, type StartAttestationResponse } from '@rackseal/node-api-contracts';
import { activationProof, deriveNodeCredential, type NodeCredential } from '@rackseal/node-identity';
import {
  activateCredential,
  AK_TEMPLATE_RSA,
  type AttestationKey,
  createAttestationKey,
  type EkKind,
  type EndorsementKey,
  ekPubHash,
  getEndorsementKey,
  marshalTpm2bPublic,
  openTransport,
  parsePcrSelection,
  quotePcrs,
  TpmClient,
  type TpmScope,
  withTpmScope,
} from '@rackseal/tpm2';
import { X509Certificate } from 'node:crypto';
import request from 'supertest';
import type { SwtpmMachine } from './swtpm';

export const b64 = (bytes: Buffer): string => bytes.toString('base64');
export const START_PATH = nodeApiPath('attestations');
export const finishPath = (id: string): string => nodeApiPath(`attestations/${id}/finish`);

/** What the agent holds during one exchange. */
export interface AgentSession {
  readonly scope: TpmScope;
  readonly ek: EndorsementKey;
  readonly ak: AttestationKey;
  readonly certificate: Buffer;
  readonly akPublic: string;
}

/** Runs `work` with a fresh AK under the swtpm's EK of `kind`, flushed afterwards. */
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
export async function answerChallenge(agent: AgentSession, start: StartAttestationResponse, options: { selection?: string; nonce?: Buffer; proofFor?: string } = {}) {
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

/** A whole enrollment against `app` (start, activate, quote, finish): the finish answer's status and body, and the credential the agent derives. */
export async function enroll(app: INestApplication, tpm: SwtpmMachine, kind: EkKind): Promise<{ status: number; body: Record<string, unknown>; credential: NodeCredential }> {
  return withAgent(tpm, kind, async (agent) => {
    const post = (path: string, body: unknown) => request(app.getHttpServer()).post(path).set('Content-Type', 'application/json').send(body as object);
    const started = await post(START_PATH, { ekCertificate: b64(agent.certificate), akPublic: agent.akPublic });
    if (started.status !== 201) {
      throw new Error(`start refused: ${started.status} ${JSON.stringify(started.body)}`);
    }
    const start = started.body as StartAttestationResponse;
    const { secret, body } = await answerChallenge(agent, start);
    const finished = await post(finishPath(start.registrationId), body);
    const credential = deriveNodeCredential(secret, { registrationId: start.registrationId, ekPubHash: ekPubHash(new X509Certificate(agent.certificate)), akName: agent.ak.name });
    return { status: finished.status, body: finished.body as Record<string, unknown>, credential };
  });
}
