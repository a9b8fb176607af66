/**
 * A whole enrollment against a control plane, played in-process on swtpm (the agent's side is
 * test/support/attestation-agent.ts): for the tests of the node routes, which need an attested
 * machine and the credential its agent derives.
 */
import type { INestApplication } from '@nestjs/common';
import { nodeApiPath, type StartAttestationResponse } from '@rackseal/node-api-contracts';
import { deriveNodeCredential, type NodeCredential } from '@rackseal/node-identity';
import { type EkKind, ekPubHash } from '@rackseal/tpm2';
import { X509Certificate } from 'node:crypto';
import request from 'supertest';
import { type AgentSession, answer, b64, withAgent } from './attestation-agent';
import type { SwtpmMachine } from './swtpm';

export { b64, withAgent } from './attestation-agent';
export const START_PATH = nodeApiPath('attestations');
export const finishPath = (id: string): string => nodeApiPath(`attestations/${id}/finish`);

/** Start, activate, quote, finish against `app`: the finish answer's status and body, and the credential the agent derives. */
export async function enroll(app: INestApplication, tpm: SwtpmMachine, kind: EkKind): Promise<{ status: number; body: Record<string, unknown>; credential: NodeCredential }> {
  return withAgent(tpm, kind, async (agent) => {
    const post = (path: string, body: unknown) => request(app.getHttpServer()).post(path).set('Content-Type', 'application/json').send(body as object);
    const started = await post(START_PATH, { ekCertificate: b64(agent.certificate), akPublic: agent.akPublic });
    if (started.status !== 201) {
      throw new Error(`start refused: ${started.status} ${JSON.stringify(started.body)}`);
    }
    const start = started.body as StartAttestationResponse;
    const { secret, body } = await answer(agent, start);
    const finished = await post(finishPath(start.registrationId), body);
    const credential = deriveNodeCredential(secret, { registrationId: start.registrationId, ekPubHash: ekPubHash(new X509Certificate(agent.certificate)), akName: agent.ak.name });
    return { status: finished.status, body: finished.body as Record<string, unknown>, credential };
  });
}

/**
 * enroll(), with the agent's TPM scope (EK and AK loaded) kept open for `work` once the machine is
 * attested: what a key certification needs, since the AK of the current attestation signs it and
 * the agent keeps no AK.
 */
export async function enrollHolding<T>(
  app: INestApplication,
  tpm: SwtpmMachine,
  kind: EkKind,
  work: (agent: AgentSession, credential: NodeCredential) => Promise<T>,
): Promise<T> {
  return withAgent(tpm, kind, async (agent) => {
    const post = (path: string, body: unknown) => request(app.getHttpServer()).post(path).set('Content-Type', 'application/json').send(body as object);
    const started = await post(START_PATH, { ekCertificate: b64(agent.certificate), akPublic: agent.akPublic });
    if (started.status !== 201) {
      throw new Error(`start refused: ${started.status} ${JSON.stringify(started.body)}`);
    }
    const start = started.body as StartAttestationResponse;
    const { secret, body } = await answer(agent, start);
    const finished = await post(finishPath(start.registrationId), body);
    if (finished.status !== 200) {
      throw new Error(`finish refused: ${finished.status} ${JSON.stringify(finished.body)}`);
    }
    const credential = deriveNodeCredential(secret, { registrationId: start.registrationId, ekPubHash: ekPubHash(new X509Certificate(agent.certificate)), akName: agent.ak.name });
    return work(agent, credential);
  });
}
