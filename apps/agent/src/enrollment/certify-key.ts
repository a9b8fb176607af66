import { randomBytes } from 'node:crypto';
import {
  type CertifiedKeyResponse,
  type CertifyKeyRequest,
  CURRENT_KEY_ROUTE,
  KEY_CHALLENGES_ROUTE,
  type KeyChallengeResponse,
  KEYS_ROUTE,
  nodeApiPath,
} from '@rackseal/node-api-contracts';
import { type NodeCredential, signNodeRequest } from '@rackseal/node-identity';
import { createCertifiedDecryptKey, marshalTpm2bPublic, objectName } from '@rackseal/tpm2';
import { type NodeApiClient, NodeApiRefusal } from '../node-api/node-api-client';
import type { ExchangeResult } from './attestation-exchange';
import { type CertifiedKeyRecord, loadCertifiedKey, saveCertifiedKey } from '../state/certified-key-state';

/** How the certification step after an attestation ended. */
export type KeyCertificationOutcome =
  | { readonly outcome: 'certified'; readonly key: CertifiedKeyRecord; readonly retiredKeyId?: string }
  /** The key in the state dir is the server's live key: nothing to do. */
  | { readonly outcome: 'kept'; readonly key: CertifiedKeyRecord }
  /** The server has no key certification (an older control plane). */
  | { readonly outcome: 'unsupported' }
  | { readonly outcome: 'failed'; readonly code?: string; readonly message: string };

/** A signed node request with the new credential (libs/node-identity), through the agent's client. */
async function signedSend(api: NodeApiClient, credential: NodeCredential, method: 'GET' | 'POST', route: string, body?: unknown): Promise<unknown> {
  const path = nodeApiPath(route);
  const response = await api.send(method, path, body, (bytes) => signNodeRequest({ credential, method, path, body: bytes, now: new Date(), nonce: randomBytes(16) }));
  return response.body;
}

/** The server's live key for this machine, undefined for none; 'unsupported' when the route does not exist. */
async function serverKey(api: NodeApiClient, credential: NodeCredential): Promise<CertifiedKeyResponse | undefined | 'unsupported'> {
  try {
    return (await signedSend(api, credential, 'GET', CURRENT_KEY_ROUTE)) as CertifiedKeyResponse;
  } catch (error) {
    if (error instanceof NodeApiRefusal && error.code === 'key.none') {
      return undefined;
    }
    if (error instanceof NodeApiRefusal && error.status === 404) {
      return 'unsupported';
    }
    throw error;
  }
}

/**
 * After a successful attestation, with its AK loaded again by `withAk` (the exchange's result: the
 * agent keeps no AK, and a certification must be signed by the AK of the machine's current
 * attestation): makes sure the machine has a certified decrypt key (docs/architecture.md §4.4). When the state dir holds the key
 * the server has live, nothing happens; otherwise (none yet, or the server retired it or never
 * recorded it) a new RSA-2048 decrypt key is created under the storage primary, certified by `ak`
 * over a fresh server challenge, sent to POST /node/v1/keys, and on the server's acceptance kept
 * in the state dir. The TPM is open only for the key's creation and certification, never while
 * the server is asked (attestation-exchange.ts, TpmOpener). Never throws for the server's refusal or a network failure: the attestation
 * stands either way, and the next one tries again.
 */
export async function ensureCertifiedKey(withAk: ExchangeResult['withAk'], api: NodeApiClient, credential: NodeCredential, stateDir: string): Promise<KeyCertificationOutcome> {
  try {
    const live = await serverKey(api, credential);
    if (live === 'unsupported') {
      return { outcome: 'unsupported' };
    }
    const local = await loadCertifiedKey(stateDir);
    if (live !== undefined && local !== undefined && local.record.name === live.name) {
      return { outcome: 'kept', key: local.record };
    }
    const challenge = (await signedSend(api, credential, 'POST', KEY_CHALLENGES_ROUTE, {})) as KeyChallengeResponse;
    const nonce = Buffer.from(typeof challenge?.nonce === 'string' ? challenge.nonce : '', 'base64');
    const key = await withAk(async (scope, ak) => {
      const made = await createCertifiedDecryptKey(scope, ak, nonce);
      // Only the blob is needed from here on: free the slot (a TPM holds few transient objects).
      await scope.flush(made.handle);
      return made;
    });
    const body: CertifyKeyRequest = {
      keyPublic: marshalTpm2bPublic(key.public).toString('base64'),
      attest: key.certification.attest.raw.toString('base64'),
      signature: key.certification.signatureBytes.toString('base64'),
    };
    const certified = (await signedSend(api, credential, 'POST', KEYS_ROUTE, body)) as CertifiedKeyResponse;
    if (certified?.name !== objectName(key.public).toString('hex')) {
      return { outcome: 'failed', message: `the server recorded key ${String(certified?.name)}, this TPM certified ${objectName(key.public).toString('hex')}` };
    }
    const record: CertifiedKeyRecord = { keyId: certified.keyId, name: certified.name, algorithm: certified.algorithm, certifiedAt: certified.certifiedAt };
    await saveCertifiedKey(stateDir, key.blob, record);
    return { outcome: 'certified', key: record, ...(certified.retiredKeyId === undefined ? {} : { retiredKeyId: certified.retiredKeyId }) };
  } catch (error) {
    if (error instanceof NodeApiRefusal) {
      return { outcome: 'failed', code: error.code, message: error.serverMessage };
    }
    return { outcome: 'failed', message: error instanceof Error ? error.message : String(error) };
  }
}
