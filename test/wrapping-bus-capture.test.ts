/**
 * The bus during the agent's unwrap (issue 13 item 6): a TCP relay in front of swtpm
 * (test/support/tpm-bus.ts on TcpProxy) records every byte between apps/agent's unwrapEnvelope and
 * the TPM while it opens a certified-key envelope with RSA_Decrypt, one with ECDH_ZGen, and a
 * pcr-sealed one with Import + PolicyPCR + PolicyAuthorize + Unseal. Salted (the default) neither
 * the content key, nor the ECDH secret Z, nor the payload appears in the recording, and each of
 * those commands carries a session that encrypts the secret parameter. With salting turned off
 * the same run shows the content key (RSA_Decrypt, Unseal) or Z (ECDH_ZGen; the content key is
 * then derived from Z in memory) on the bus, so the search can fail. The payload itself
 * never crosses the bus either way: the agent decrypts it in memory with the content key.
 */
import { type ApprovalsResponse } from '@rackseal/node-api-contracts';
import { eccLabeledEncapsulate, type EccPublic, leftPad, openTransport, TPM_CC, TpmClient } from '@rackseal/tpm2';
import { CONTENT_KEY_LABEL, wrapToApprovedPcrPolicy, wrapToCertifiedKey } from '@rackseal/wrapping';
import { createECDH, randomBytes } from 'node:crypto';
import { type UnwrapKeys, unwrapEnvelope } from '../apps/agent/src/unwrap/unwrap-envelope';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { TcpProxy } from './support/tcp-proxy';
import { occurrences, sessionsOf, TpmBus } from './support/tpm-bus';
import { ApprovalSigner, currentPcrSet, provisionMachine, type ProvisionedMachine } from './support/wrapping';

const TPMA_SESSION_DECRYPT = 0x20;
const TPMA_SESSION_ENCRYPT = 0x40;

/** The commands that carry a secret in an unwrap, the session attribute that must protect it, and their handle count. */
const SECRET_COMMANDS = new Map<number, { attribute: number; handles: number }>([
  [TPM_CC.TPM_CC_RSA_Decrypt, { attribute: TPMA_SESSION_ENCRYPT, handles: 1 }],
  [TPM_CC.TPM_CC_ECDH_ZGen, { attribute: TPMA_SESSION_ENCRYPT, handles: 1 }],
  [TPM_CC.TPM_CC_Unseal, { attribute: TPMA_SESSION_ENCRYPT, handles: 1 }],
  [TPM_CC.TPM_CC_Import, { attribute: TPMA_SESSION_DECRYPT, handles: 1 }],
]);

const address = { deliveryId: 'bus-capture-1', secretVersion: 1 };

/** A random source that remembers what it gave: the first draw of a wrap is its content key (or RSA's OAEP message). */
function recording(): { random: (n: number) => Buffer; draws: Buffer[] } {
  const draws: Buffer[] = [];
  // Copies: the wrap zeroes its content key when done.
  return { draws, random: (n) => { const b = randomBytes(n); draws.push(Buffer.from(b)); return b; } };
}

describe('bus capture: what a sniffer sees while the agent unwraps', () => {
  const fixture = useSwtpms(1);
  const signer = new ApprovalSigner();
  let bus: TpmBus;
  let relay: TcpProxy;
  let client: TpmClient;
  let machine: ProvisionedMachine;
  let keys: UnwrapKeys;
  let approvals: ApprovalsResponse;

  beforeAll(async () => {
    const tpm: SwtpmMachine = fixture.at(0);
    bus = new TpmBus();
    relay = await TcpProxy.start({ host: tpm.host, port: tpm.port }, () => bus.interceptor());
    client = new TpmClient(await openTransport(`swtpm:127.0.0.1:${relay.port}`));
    machine = await provisionMachine(client);
    keys = { ekPubHash: machine.ekPubHash, certifiedKey: machine.rsaKey };
    approvals = signer.approvals('capture', 1, [await currentPcrSet(client)]);
  });

  afterAll(async () => {
    await client?.close();
    await relay?.cut();
  });

  /** One envelope of each kind with the secrets a sniffer must not learn, by name. */
  function envelopes(): { name: string; envelope: Buffer; keys: UnwrapKeys; payload: Buffer; secrets: Record<string, Buffer>; inClearWhenUnsalted: string[] }[] {
    const out = [];
    {
      const payload = randomBytes(512);
      const r = recording();
      const envelope = wrapToCertifiedKey(machine.rsaKey.public, payload, address, { random: r.random });
      out.push({ name: 'certified-key RSA (RSA_Decrypt)', envelope, keys, payload, secrets: { 'content key': r.draws[0]! }, inClearWhenUnsalted: ['content key'] });
    }
    {
      const payload = randomBytes(512);
      const pub = machine.eccKey.public as EccPublic;
      const ephemeral = createECDH('prime256v1');
      ephemeral.generateKeys();
      const ephemeralPrivateKey = ephemeral.getPrivateKey();
      const envelope = wrapToCertifiedKey(pub, payload, address, { ephemeralPrivateKey });
      const contentKey = eccLabeledEncapsulate(pub, CONTENT_KEY_LABEL, ephemeralPrivateKey).seed.subarray(0, 32);
      const Z = ephemeral.computeSecret(Buffer.concat([Buffer.of(4), leftPad(pub.unique.x, 32), leftPad(pub.unique.y, 32)]));
      out.push({ name: 'certified-key P-256 (ECDH_ZGen)', envelope, keys: { ...keys, certifiedKey: machine.eccKey }, payload, secrets: { 'content key': contentKey, 'ECDH Z': Z }, inClearWhenUnsalted: ['ECDH Z'] });
    }
    {
      const payload = randomBytes(512);
      const r = recording();
      const envelope = wrapToApprovedPcrPolicy({ ekPublic: machine.ekPublic, group: 'capture', epoch: 1, signingKeyName: signer.name }, payload, address, { random: r.random });
      out.push({ name: 'pcr-sealed (Import + Unseal)', envelope, keys, payload, secrets: { 'content key': r.draws[0]! }, inClearWhenUnsalted: ['content key'] });
    }
    return out;
  }

  /** Where each secret, or any 8 consecutive bytes of it, occurs in the recording. */
  function sightings(secrets: Record<string, Buffer>): Record<string, number> {
    const recording = bus.bytes();
    const out: Record<string, number> = {};
    for (const [label, secret] of Object.entries(secrets)) {
      let found = 0;
      for (let i = 0; i + 8 <= secret.length; i += 1) {
        found += occurrences(recording, secret.subarray(i, i + 8)).length;
      }
      out[label] = found;
    }
    return out;
  }

  it('salted (the default): no content key, no Z, no payload on the bus; every secret-carrying command has its encrypting session', async () => {
    for (const { name, envelope, keys: k, payload, secrets } of envelopes()) {
      bus.clear();
      const out = await unwrapEnvelope(client, envelope, k, { approvals });
      expect({ name, out: out.toString('hex') }).toEqual({ name, out: payload.toString('hex') });
      const seen = sightings({ ...secrets, payload });
      expect({ name, seen }).toEqual({ name, seen: Object.fromEntries(Object.keys(seen).map((label) => [label, 0])) });
      const protectedCommands = bus.exchanges
        .map((e) => e.command)
        .filter((c) => SECRET_COMMANDS.has(c.readUInt32BE(6)))
        .map((c) => {
          const { attribute, handles } = SECRET_COMMANDS.get(c.readUInt32BE(6))!;
          return sessionsOf(c, handles).some((s) => (s.attributes & attribute) !== 0);
        });
      expect(protectedCommands.length).toBeGreaterThan(0);
      expect({ name, protectedCommands }).toEqual({ name, protectedCommands: protectedCommands.map(() => true) });
    }
  });

  it('negative control, salting off: the same unwraps put the content key (RSA_Decrypt, Unseal) and Z (ECDH_ZGen) on the bus in clear', async () => {
    for (const { name, envelope, keys: k, payload, secrets, inClearWhenUnsalted } of envelopes()) {
      bus.clear();
      const out = await unwrapEnvelope(client, envelope, k, { approvals, salt: false });
      expect(out.equals(payload)).toBe(true);
      const whole = Object.fromEntries(Object.entries(secrets).map(([label, secret]) => [label, occurrences(bus.bytes(), secret).length > 0]));
      // With ECDH the TPM returns Z; the content key is derived from it in memory (KDFe), so only Z crosses.
      expect({ name, whole }).toEqual({ name, whole: Object.fromEntries(Object.keys(secrets).map((label) => [label, inClearWhenUnsalted.includes(label)])) });
      // The payload is decrypted in the agent's memory, never by the TPM: absent either way.
      expect(sightings({ payload }).payload).toBe(0);
    }
  });
});
