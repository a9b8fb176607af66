/**
 * Wrapping (libs/wrapping, the control plane's side) and the agent's unwrap in the TPM
 * (apps/agent/src/unwrap) on two swtpm machines (issue 13 items 5-6): certified-key RSA-2048 and
 * P-256 and pcr-sealed envelopes unwrap to the exact bytes on their machine and are refused, typed,
 * on the other; a tampered envelope fails GCM; the updatable PCR policy — sealed once, refused after
 * a PCR extend (the agent's typed refusal in normal use; in the TPM, PolicyAuthorize refuses the old
 * approval and Unseal is TPM_RC_POLICY_FAIL), opened by the same envelope once the new state is approved; an epoch bump withdraws
 * the old approvals; an approval signed by another key is refused. After every unwrap, refused or
 * not, the TPM holds no transient object and no session.
 */
import { type ApprovalsResponse } from '@rackseal/node-api-contracts';
import {
  getEndorsementKey,
  getHandles,
  openTransport,
  pcrExtend,
  TPM_ALG_ID,
  TPM_HT,
  TpmClient,
  TpmError,
  unsealImportedBlob,
  withTpmScope,
} from '@rackseal/tpm2';
import {
  deliveryAckProof,
  EnvelopeAuthenticationError,
  parseEnvelope,
  type PcrSealedKeyTransport,
  wrapDeliveryToApprovedPcrPolicy,
  wrapDeliveryToCertifiedKey,
  wrapToApprovedPcrPolicy,
  wrapToCertifiedKey,
} from '@rackseal/wrapping';
import { randomBytes } from 'node:crypto';
import { approvalsFor, unsealWithApproval } from '../apps/agent/src/unwrap/pcr-sealed-unwrap';
import { type UnwrapKeys, unwrapDelivery, unwrapEnvelope } from '../apps/agent/src/unwrap/unwrap-envelope';
import { EnvelopeRecipientError, NoApprovalError, UnwrapRefusal } from '../apps/agent/src/unwrap/unwrap-errors';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { ApprovalSigner, currentPcrSet, provisionMachine, type ProvisionedMachine } from './support/wrapping';

const GROUP = 'workers';

describe('wrapping and the agent\'s unwrap in the TPM', () => {
  const fixture = useSwtpms(2);
  const signer = new ApprovalSigner();
  let clients: TpmClient[] = [];
  let machines: ProvisionedMachine[] = [];

  beforeAll(async () => {
    clients = await Promise.all([0, 1].map(async (i) => new TpmClient(await openTransport((fixture.at(i) as SwtpmMachine).device))));
    machines = [];
    for (const client of clients) {
      machines.push(await provisionMachine(client));
    }
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
  });

  const keysOf = (i: number, key: 'rsaKey' | 'eccKey' = 'rsaKey'): UnwrapKeys => ({ ekPubHash: machines[i]!.ekPubHash, certifiedKey: machines[i]![key] });

  async function expectNothingLoaded(i: number): Promise<void> {
    const client = clients[i]!;
    const loaded = {
      transient: await getHandles(client, TPM_HT.TPM_HT_TRANSIENT),
      sessions: await getHandles(client, TPM_HT.TPM_HT_LOADED_SESSION),
    };
    expect(loaded).toEqual({ transient: [], sessions: [] });
  }

  /** unwrapEnvelope on machine i, then the check that it left nothing in the TPM; the refusal when it throws. */
  async function unwrapOn(i: number, envelope: Buffer, keys: UnwrapKeys, approvals?: ApprovalsResponse): Promise<Buffer | Error> {
    try {
      return await unwrapEnvelope(clients[i]!, envelope, keys, approvals === undefined ? {} : { approvals });
    } catch (error) {
      return error as Error;
    } finally {
      await expectNothingLoaded(i);
    }
  }

  const address = { deliveryId: 'delivery-0001', secretVersion: 1 };

  describe.each([
    ['RSA-2048 (RSA_Decrypt)', 'rsaKey'],
    ['ECC P-256 (ECDH_ZGen + KDFe)', 'eccKey'],
  ] as const)('certified-key, %s', (_what, key) => {
    it('unwraps on its machine to the exact bytes; the envelope names the key and no secret', async () => {
      const payload = randomBytes(4096);
      const envelope = wrapToCertifiedKey(machines[0]![key].public, payload, address);
      const parsed = parseEnvelope(envelope);
      expect(parsed.transport.binding).toBe('certified-key');
      expect(envelope.includes(payload.subarray(0, 16))).toBe(false);
      const out = await unwrapOn(0, envelope, keysOf(0, key));
      expect(Buffer.isBuffer(out) ? out.toString('hex') : out).toBe(payload.toString('hex'));
    });

    it('machine A\'s envelope fed to machine B is refused before its TPM is asked, naming both keys', async () => {
      const envelope = wrapToCertifiedKey(machines[0]![key].public, Buffer.from('for A only'), address);
      const refusal = await unwrapOn(1, envelope, keysOf(1, key));
      expect(refusal).toBeInstanceOf(EnvelopeRecipientError);
      expect((refusal as UnwrapRefusal).code).toBe('unwrap.wrong-recipient');
      expect((refusal as Error).message).toContain(parseEnvelope(envelope).transport.recipient.toString('hex'));
    });

    it('B\'s TPM, made to try anyway (B claims A\'s key blob), cannot load A\'s key: the TPM refuses', async () => {
      const envelope = wrapToCertifiedKey(machines[0]![key].public, Buffer.from('for A only'), address);
      const refusal = await unwrapOn(1, envelope, { ekPubHash: machines[1]!.ekPubHash, certifiedKey: machines[0]![key] });
      // A's blob names A's storage primary: B derives another one (KeyBlobParentError), or its Load fails.
      expect((refusal as Error).name).toMatch(/KeyBlobParentError|TpmError/);
    });

    it.each([
      ['a ciphertext byte', (e: Buffer) => e.length - 40],
      ['a header byte (the nonce)', (e: Buffer) => e.length - 16 - 64 - 4 - 1],
    ] as const)('a flipped %s fails GCM after the TPM recovered the content key (typed, no payload)', async (_what, offset) => {
      const payload = randomBytes(64);
      const envelope = wrapToCertifiedKey(machines[0]![key].public, payload, address);
      const tampered = Buffer.from(envelope);
      tampered[offset(envelope)] = tampered[offset(envelope)]! ^ 0x01;
      expect(await unwrapOn(0, tampered, keysOf(0, key))).toBeInstanceOf(EnvelopeAuthenticationError);
    });

    it('an envelope re-addressed to another delivery id fails GCM; one not asked for is refused by the caller\'s expectation', async () => {
      const envelope = wrapToCertifiedKey(machines[0]![key].public, randomBytes(64), address);
      const readdressed = Buffer.from(envelope);
      const at = envelope.indexOf(Buffer.from(address.deliveryId));
      readdressed.write('delivery-0002', at, 'latin1');
      expect(parseEnvelope(readdressed).deliveryId).toBe('delivery-0002');
      expect(await unwrapOn(0, readdressed, keysOf(0, key))).toBeInstanceOf(EnvelopeAuthenticationError);
      const refusal = await unwrapEnvelope(clients[0]!, envelope, keysOf(0, key), { expect: { deliveryId: 'delivery-0002', secretVersion: 1 } }).catch((e: unknown) => e);
      expect((refusal as UnwrapRefusal).code).toBe('unwrap.wrong-delivery');
    });
  });

  describe('pcr-sealed: the updatable PCR policy', () => {
    const wrapFor = (i: number, epoch: number, payload: Buffer) =>
      wrapToApprovedPcrPolicy({ ekPublic: machines[i]!.ekPublic, group: GROUP, epoch, signingKeyName: signer.name }, payload, address);

    it('sealed once; a PCR extend refuses it ("no approval" in normal use; the TPM refuses the old approval at PolicyAuthorize and the Unseal with TPM_RC_POLICY_FAIL); the new state approved, the same envelope opens', async () => {
      const payload = randomBytes(2048);
      const envelope = wrapFor(0, 1, payload);
      const before = signer.approvals(GROUP, 1, [await currentPcrSet(clients[0]!)]);
      expect(await unwrapOn(0, envelope, keysOf(0), before)).toEqual(payload);

      await pcrExtend(clients[0]!, 7, [{ hashAlg: TPM_ALG_ID.TPM_ALG_SHA256, digest: randomBytes(32) }]);

      // Normal use: the agent finds no approval of the PCR values it reads and does not ask the TPM to unseal.
      const refusal = await unwrapOn(0, envelope, keysOf(0), before);
      expect(refusal).toBeInstanceOf(NoApprovalError);
      expect((refusal as Error).message).toBe(`no approval for the current PCR state (group "${GROUP}", epoch 1, 1 approval(s) checked)`);

      // The old approval fed to the TPM: PolicyPCR gives the new digest, PolicyAuthorize refuses it.
      const transport = parseEnvelope(envelope).transport as PcrSealedKeyTransport;
      const checked = approvalsFor(transport, before);
      const tpmRefusal = await withTpmScope(clients[0]!, async (scope) => {
        const ek = await getEndorsementKey(scope, 'rsa-2048');
        return unsealWithApproval(scope, ek, transport, checked, checked.approvals[0]!);
      }).catch((e: unknown) => e);
      await expectNothingLoaded(0);
      // Part 3 §23.16: approvedPolicy must equal the session's digest after PolicyPCR, so the TPM
      // refuses the stale approval at PolicyAuthorize (TPM_RC_VALUE, parameter 1) before any Unseal.
      expect(tpmRefusal).toBeInstanceOf(TpmError);
      expect((tpmRefusal as TpmError).message).toMatch(/^TPM2_PolicyAuthorize failed: TPM_RC_VALUE/);
      // And the Unseal itself, with a session that holds no authorization (PolicyPCR of the new state only): TPM_RC_POLICY_FAIL.
      const unsealRefusal = await withTpmScope(clients[0]!, async (scope) =>
        unsealImportedBlob(scope, await getEndorsementKey(scope, 'rsa-2048'), transport.blob, checked.selection),
      ).catch((e: unknown) => e);
      await expectNothingLoaded(0);
      expect((unsealRefusal as TpmError).message).toMatch(/^TPM2_Unseal failed: TPM_RC_POLICY_FAIL/);

      // The control plane approves the new state (the old one stays approved too): the same envelope opens.
      const after = signer.approvals(GROUP, 1, [before.approvals.length === 1 ? await currentPcrSet(clients[0]!) : {}, { 0: '00'.repeat(32), 7: '11'.repeat(32) }]);
      expect(await unwrapOn(0, envelope, keysOf(0), after)).toEqual(payload);
    });

    it('withdrawal: after the epoch is bumped, an envelope wrapped at epoch 2 does not open with epoch-1 approvals (typed, and the TPM refuses them too)', async () => {
      const payload = randomBytes(32);
      const state = await currentPcrSet(clients[0]!);
      const epoch1 = signer.approvals(GROUP, 1, [state]);
      const epoch2 = signer.approvals(GROUP, 2, [state]);
      const envelope = wrapFor(0, 2, payload);
      const refusal = await unwrapOn(0, envelope, keysOf(0), epoch1);
      expect((refusal as UnwrapRefusal).code).toBe('unwrap.approvals-mismatch');
      expect((refusal as Error).message).toMatch(/approval epoch 2; the approvals are of group "workers" at epoch 1/);

      // An epoch-1 signature presented as if it were for epoch 2: VerifySignature fails over epoch 2's aHash.
      const transport = parseEnvelope(envelope).transport as PcrSealedKeyTransport;
      const forged = approvalsFor(transport, { ...epoch2, approvals: epoch1.approvals });
      const tpmRefusal = await withTpmScope(clients[0]!, async (scope) =>
        unsealWithApproval(scope, await getEndorsementKey(scope, 'rsa-2048'), transport, forged, forged.approvals[0]!),
      ).catch((e: unknown) => e);
      await expectNothingLoaded(0);
      expect((tpmRefusal as TpmError).rc?.name).toBe('TPM_RC_SIGNATURE');

      expect(await unwrapOn(0, envelope, keysOf(0), epoch2)).toEqual(payload);
      // And an epoch-1 envelope does not open with the epoch-2 approvals: it must be wrapped again.
      const old = await unwrapOn(0, wrapFor(0, 1, payload), keysOf(0), epoch2);
      expect((old as Error).message).toMatch(/the epoch was bumped: the envelope must be wrapped again/);
    });

    it('an approval signed by another key is refused: by Name before the TPM, and by VerifySignature when it claims the real key', async () => {
      const state = await currentPcrSet(clients[0]!);
      const envelope = wrapFor(0, 1, randomBytes(32));
      const other = new ApprovalSigner();
      const refusal = await unwrapOn(0, envelope, keysOf(0), other.approvals(GROUP, 1, [state]));
      expect((refusal as UnwrapRefusal).code).toBe('unwrap.signer-mismatch');

      const genuine = signer.approvals(GROUP, 1, [state]);
      const impostor = { ...genuine, approvals: other.approvals(GROUP, 1, [state]).approvals };
      const tpmRefusal = await unwrapOn(0, envelope, keysOf(0), impostor);
      expect(tpmRefusal).toBeInstanceOf(TpmError);
      expect((tpmRefusal as TpmError).rc.name).toBe('TPM_RC_SIGNATURE');
    });

    it('machine A\'s envelope fed to machine B is refused before B\'s TPM is asked; B\'s EK cannot import it either', async () => {
      const envelope = wrapFor(0, 1, randomBytes(32));
      const approvalsB = signer.approvals(GROUP, 1, [await currentPcrSet(clients[1]!)]);
      const refusal = await unwrapOn(1, envelope, keysOf(1), approvalsB);
      expect(refusal).toBeInstanceOf(EnvelopeRecipientError);
      expect((refusal as Error).message).toContain(machines[0]!.ekPubHash);

      const transport = parseEnvelope(envelope).transport as PcrSealedKeyTransport;
      const checked = approvalsFor(transport, approvalsB);
      const tpmRefusal = await withTpmScope(clients[1]!, async (scope) =>
        unsealWithApproval(scope, await getEndorsementKey(scope, 'rsa-2048'), transport, checked, checked.approvals[0]!),
      ).catch((e: unknown) => e);
      await expectNothingLoaded(1);
      // The seed was encapsulated to A's EK: B's TPM cannot OAEP-decrypt it. libtpms answers that with
      // TPM_RC_FAILURE without entering failure mode (B's own envelope unwraps right after); a
      // hardware TPM says TPM_RC_VALUE. Either way Import fails and nothing is loaded.
      expect(tpmRefusal).toBeInstanceOf(TpmError);
      expect((tpmRefusal as TpmError).message).toMatch(/^TPM2_Import failed: (TPM_RC_FAILURE|TPM_RC_VALUE)/);
      const own = randomBytes(32);
      expect(await unwrapOn(1, wrapFor(1, 1, own), keysOf(1), approvalsB)).toEqual(own);
    });

    it('a tampered pcr-sealed envelope fails GCM; without approvals it is refused, typed', async () => {
      const payload = randomBytes(100);
      const envelope = wrapFor(0, 1, payload);
      const approvals = signer.approvals(GROUP, 1, [await currentPcrSet(clients[0]!)]);
      const tampered = Buffer.from(envelope);
      tampered[envelope.length - 20] = tampered[envelope.length - 20]! ^ 0x80;
      expect(await unwrapOn(0, tampered, keysOf(0), approvals)).toBeInstanceOf(EnvelopeAuthenticationError);
      expect(((await unwrapOn(0, envelope, keysOf(0))) as UnwrapRefusal).code).toBe('unwrap.no-approvals');
    });
  });

  describe('the proof of unwrap (issue 14 item 2)', () => {
    it.each([['certified-key RSA-2048', 'rsaKey'], ['certified-key P-256', 'eccKey'], ['pcr-sealed', 'pcr']] as const)(
      '%s: the agent\'s proof from the content key it unwrapped in the TPM is the control plane\'s; another envelope\'s is not',
      async (_what, binding) => {
        const payload = randomBytes(300);
        const wrap = () =>
          binding === 'pcr'
            ? wrapDeliveryToApprovedPcrPolicy({ ekPublic: machines[0]!.ekPublic, group: GROUP, epoch: 1, signingKeyName: signer.name }, payload, address)
            : wrapDeliveryToCertifiedKey(machines[0]![binding].public, payload, address);
        const sent = wrap();
        const approvals = binding === 'pcr' ? signer.approvals(GROUP, 1, [await currentPcrSet(clients[0]!)]) : undefined;
        const opened = await unwrapDelivery(clients[0]!, sent.envelope, keysOf(0, binding === 'pcr' ? 'rsaKey' : binding), approvals === undefined ? {} : { approvals });
        await expectNothingLoaded(0);
        expect({ payload: opened.payload.toString('hex'), deliveryId: opened.deliveryId, secretVersion: opened.secretVersion }).toEqual({ payload: payload.toString('hex'), ...address });
        expect(opened.ackProof.toString('hex')).toBe(sent.ackProof.toString('hex'));
        // The same payload wrapped again has another content key: its proof would not ack this delivery.
        const other = wrap();
        expect(other.ackProof.equals(sent.ackProof)).toBe(false);
        expect(deliveryAckProof(randomBytes(32), address.deliveryId).equals(opened.ackProof)).toBe(false);
      },
    );
  });
});
