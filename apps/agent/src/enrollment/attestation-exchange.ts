import { unwrapCertificate } from '@rackseal/ek-trust';
import {
  ATTESTATION_LIMITS,
  ATTESTATIONS_ROUTE,
  type FinishAttestationRequest,
  type FinishAttestationResponse,
  finishAttestationRoute,
  type ImaMeasurementsWire,
  nodeApiPath,
  type StartAttestationRequest,
  type StartAttestationResponse,
} from '@rackseal/node-api-contracts';
import { activationProof, deriveNodeCredential, type NodeCredential } from '@rackseal/node-identity';
import {
  activateCredential,
  AK_TEMPLATE_ECC,
  type AttestationKey,
  createAttestationKey,
  type EndorsementKey,
  type LoadedObject,
  getEndorsementKey,
  getHandles,
  loadKeyBlob,
  marshalTpm2bPublic,
  nvReadAll,
  parsePcrSelection,
  quotePcrs,
  readEkCertificates,
  TPM_HT,
  type TpmClient,
  type TpmScope,
  withTpmScope,
} from '@rackseal/tpm2';
import { type NodeApiClient, NodeApiRefusal } from '../node-api/node-api-client';
import { MAX_SERVER_CODE, serverText } from '../node-api/server-text';
import { chooseEk, type EkChoice, type EnrollEkKind, flushTransient } from './choose-ek';
import { readImaWindow } from './ima-window';

/**
 * EK certificate chain indices (TCG EK Credential Profile 2.5 §2.2.1.5): intermediates some TPM
 * makers store next to the EK certificate, sent along so the server can build the chain.
 */
const EK_CHAIN_FIRST = 0x01c00100;
const EK_CHAIN_LAST = 0x01c001ff;

/** Between the two TPM phases the EK changed (the TPM was cleared or swapped while the server was asked). */
export class ExchangeTpmChangedError extends Error {
  constructor() {
    super('the TPM\'s EK changed while the server was asked (the TPM was cleared or replaced): attest again');
    this.name = 'ExchangeTpmChangedError';
  }
}

/** The server's answer is not what the protocol promises (a bug or a foreign server), named. */
export class ExchangeProtocolError extends Error {
  constructor(reason: string) {
    super(`the server's answer breaks the enrollment protocol: ${reason}`);
    this.name = 'ExchangeProtocolError';
  }
}

export interface ExchangeResult {
  readonly response: FinishAttestationResponse;
  readonly credential: NodeCredential;
  readonly registrationId: string;
  readonly ekPubHash: string;
  /**
   * Runs `work` with this exchange's AK loaded again, in a TPM phase of its own (the EK re-derived
   * and its Name checked, the AK loaded from its blob, the transient EK freed): a key certification
   * must be signed by the AK of the machine's current attestation (certify-key.ts).
   */
  readonly withAk: <T>(work: (scope: TpmScope, ak: LoadedObject) => Promise<T>) => Promise<T>;
}

/** What the TPM gives for the start call: the EK's certificate (DER) if it holds one, and intermediates. */
interface EkMaterial {
  readonly certificate?: Buffer;
  readonly intermediates: Buffer[];
}

async function readEkMaterial(client: TpmClient, kind: EnrollEkKind): Promise<EkMaterial> {
  const slot = (await readEkCertificates(client)).find((c) => c.keyType === kind);
  const certificate = slot === undefined ? undefined : unwrapCertificate(slot.nvData).der;
  const chain = (await getHandles(client, TPM_HT.TPM_HT_NV_INDEX)).filter((h) => h >= EK_CHAIN_FIRST && h <= EK_CHAIN_LAST);
  const intermediates: Buffer[] = [];
  for (const index of chain.slice(0, ATTESTATION_LIMITS.intermediates)) {
    intermediates.push(unwrapCertificate(await nvReadAll(client, index)).der);
  }
  return { ...(certificate === undefined ? {} : { certificate }), intermediates };
}

function decode(value: unknown, field: string): Buffer {
  if (typeof value !== 'string') {
    throw new ExchangeProtocolError(`${field} is missing`);
  }
  return Buffer.from(value, 'base64');
}

function checkStart(body: unknown): StartAttestationResponse {
  const start = body as Partial<StartAttestationResponse> | undefined;
  if (start === undefined || typeof start.registrationId !== 'string' || typeof start.pcrSelection?.bank !== 'string' || !Array.isArray(start.pcrSelection.pcrs)) {
    throw new ExchangeProtocolError('the start answer lacks registrationId or pcrSelection');
  }
  decode(start.credentialBlob, 'credentialBlob');
  decode(start.encryptedSecret, 'encryptedSecret');
  decode(start.nonce, 'nonce');
  if (start.ima !== undefined && !(Number.isSafeInteger(start.ima?.fromEntry) && start.ima.fromEntry >= 0)) {
    throw new ExchangeProtocolError('ima.fromEntry is not an entry index');
  }
  return start as StartAttestationResponse;
}

/** The finish was refused for `ima.templateHashAlgorithm` alone: a control plane that predates the field (request.invalid, "should not exist"). */
function refusesTemplateHashAlgorithm(error: unknown): boolean {
  return error instanceof NodeApiRefusal && error.status === 400 && error.code === 'request.invalid' && [error.serverMessage, ...error.lines].some((line) => line.includes('templateHashAlgorithm should not exist'));
}

/** The first phase's AK loaded again under its EK, re-derived from the same template and checked by Name. */
async function loadAkAgain(scope: TpmScope, first: FirstPhase): Promise<{ ek: EndorsementKey; ak: LoadedObject }> {
  const ek = await getEndorsementKey(scope, first.kind);
  if (!ek.name.equals(first.ekName)) {
    throw new ExchangeTpmChangedError();
  }
  return { ek, ak: await loadKeyBlob(scope, first.ak.blob) };
}

/**
 * Opens the TPM for one piece of work and closes it after (attest-and-store.ts: withTpmDevice on
 * --tpm). The exchange calls it once per TPM phase, so the device is never held while the agent
 * waits for the server: swtpm serves one connection at a time and /dev/tpm0 one opener, and other
 * software on the machine (a disk unlock at boot) needs the TPM while a slow or stalled server is
 * being waited for — for up to five attempts of the client's timeout plus backoff.
 */
export type TpmOpener = <T>(work: (client: TpmClient) => Promise<T>) => Promise<T>;

/** What the first TPM phase leaves for the second: the AK as a blob to load again under the same EK. */
interface FirstPhase {
  readonly kind: EnrollEkKind;
  readonly hash: string;
  readonly ekName: Buffer;
  readonly ak: AttestationKey;
  readonly startBody: StartAttestationRequest;
}

/**
 * One enrollment exchange (docs/architecture.md §4.3): a fresh AK under the EK, the start call with
 * the EK certificate (and the EK public, so a certificate that is not this TPM's key is refused by
 * name), TPM2_ActivateCredential of the server's challenge, a quote of exactly the asked selection
 * over the nonce, and the finish call with the activation proof — never the secret — and, when the
 * server asks (a group with a runtime policy), the IMA entries from the index it names. The node
 * credential is derived from the activated secret as the server derives it, and checked against
 * the ID the server answered. Refusals are the client's NodeApiRefusal; TPM failures libs/tpm2's.
 *
 * The TPM is open only in the two TPM phases (see TpmOpener): the AK made in the first is flushed
 * with the EK and loaded again from its blob in the second, under the EK re-derived from the same
 * template (its Name checked, so it is the same key). Nothing the TPM holds waits on the network.
 */
export async function runAttestationExchange(withTpm: TpmOpener, api: NodeApiClient, choice: EkChoice, eventLog: Buffer | undefined, imaList?: string): Promise<ExchangeResult> {
  const first = await withTpm((client) =>
    withTpmScope(client, async (scope): Promise<FirstPhase> => {
      const { kind, ek, hash } = await chooseEk(scope, choice);
      const material = await readEkMaterial(client, kind);
      // The EK public goes with the certificate: one that is not this TPM's key is then refused by the
      // server by name (attestation.ek-mismatch), the message the operator needs.
      const ak = await createAttestationKey(scope, ek, { template: AK_TEMPLATE_ECC });
      const startBody: StartAttestationRequest = {
        ...(material.certificate === undefined ? {} : { ekCertificate: material.certificate.toString('base64') }),
        ...(material.intermediates.length === 0 ? {} : { ekIntermediates: material.intermediates.map((c) => c.toString('base64')) }),
        ekPublic: marshalTpm2bPublic(ek.public).toString('base64'),
        akPublic: marshalTpm2bPublic(ak.public).toString('base64'),
      };
      return { kind, hash, ekName: ek.name, ak, startBody };
    }),
  );
  const start = checkStart((await api.send('POST', nodeApiPath(ATTESTATIONS_ROUTE), first.startBody)).body);
  const nonce = decode(start.nonce, 'nonce');
  const { secret, quote } = await withTpm((client) =>
    withTpmScope(client, async (scope) => {
      const { ek, ak } = await loadAkAgain(scope, first);
      const activated = await activateCredential(scope, ak, ek, {
        credentialBlob: decode(start.credentialBlob, 'credentialBlob'),
        encryptedSecret: decode(start.encryptedSecret, 'encryptedSecret'),
      });
      try {
        return { secret: activated, quote: await quotePcrs(scope, ak, parsePcrSelection(`${start.pcrSelection.bank}:${start.pcrSelection.pcrs.join(',')}`), nonce) };
      } catch (error) {
        activated.fill(0);
        throw error;
      }
    }),
  );
  try {
    // Read after the quote: the list may run ahead of PCR 10, never behind it (ima-window.ts). The
    // per-bank list of the quote's bank when the kernel writes one.
    const ima = start.ima === undefined || imaList === undefined ? undefined : await readImaWindow(imaList, start.ima.fromEntry, start.pcrSelection.bank);
    const finishBody = (window: ImaMeasurementsWire | undefined): FinishAttestationRequest => ({
      activationProof: activationProof(secret, start.registrationId, nonce).toString('base64'),
      quote: { attest: quote.message.toString('base64'), signature: quote.signatureBytes.toString('base64') },
      pcrValues: Buffer.concat(quote.pcrValues).toString('base64'),
      ...(eventLog === undefined ? {} : { eventLog: eventLog.toString('base64') }),
      ...(window === undefined ? {} : { ima: window }),
    });
    const finishPath = nodeApiPath(finishAttestationRoute(start.registrationId));
    let response: FinishAttestationResponse;
    try {
      response = (await api.send('POST', finishPath, finishBody(ima))).body as FinishAttestationResponse;
    } catch (error) {
      if (ima?.templateHashAlgorithm === undefined || !refusesTemplateHashAlgorithm(error)) {
        throw error;
      }
      // A control plane older than the field refuses it before it looks at the registration: the
      // configured list again, as agents before it sent (the policy's ima.log_hash_alg reads it there).
      const legacy = await readImaWindow(imaList!, start.ima!.fromEntry);
      response = (await api.send('POST', finishPath, finishBody(legacy === undefined ? undefined : { firstEntry: legacy.firstEntry, entries: legacy.entries }))).body as FinishAttestationResponse;
    }
    if (response?.state !== 'attested' || typeof response.machineId !== 'string' || typeof response.credentialId !== 'string') {
      throw new ExchangeProtocolError('the finish answer is not an attested machine with a credential');
    }
    const credential = deriveNodeCredential(secret, { registrationId: start.registrationId, ekPubHash: first.hash, akName: first.ak.name });
    if (credential.credentialId !== response.credentialId) {
      throw new ExchangeProtocolError(`the server names credential ${serverText(response.credentialId, MAX_SERVER_CODE)}, this TPM's secret derives ${credential.credentialId}`);
    }
    const withAk = <T>(work: (scope: TpmScope, ak: LoadedObject) => Promise<T>): Promise<T> =>
      withTpm((client) =>
        withTpmScope(client, async (scope) => {
          const { ek, ak } = await loadAkAgain(scope, first);
          await flushTransient(scope, ek); // the AK alone signs from here on
          return work(scope, ak);
        }),
      );
    return { response, credential, registrationId: start.registrationId, ekPubHash: first.hash, withAk };
  } finally {
    secret.fill(0);
  }
}
