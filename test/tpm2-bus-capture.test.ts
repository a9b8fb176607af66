/**
 * The bus between the agent's TPM code and a discrete TPM, recorded: a TCP relay in front of swtpm
 * (test/support/tpm-bus.ts on TcpProxy) keeps every byte of every command and response while the
 * agent-side operations that carry a secret run — credential activation (RSA-2048 and P-256 EKs),
 * sealing and unsealing the node credential under the SRK, Import + PolicyPCR + Unseal of a
 * content key under the EK, and RSA_Decrypt with a certified key. Salted (the default), none of the
 * secrets appears anywhere in the recording; with salting turned off the same run shows every one
 * of them, so the search can fail. Then the relay turns hostile: a flipped response byte is
 * TpmResponseIntegrityError, a flipped command HMAC byte is refused by the TPM. After each run the
 * TPM holds no object and no session.
 */
import {
  activateCredential,
  commandName,
  createAttestationKey,
  createCertifiedDecryptKey,
  createImportBlob,
  type EkKind,
  getEndorsementKey,
  makeCredential,
  openTransport,
  parsePcrSelection,
  pcrRead,
  PolicyDigest,
  publicKeyFromTpmt,
  rsaOaepDecrypt,
  sealSecret,
  TPM_ALG_ID,
  TPM_CC,
  TPM_RH,
  TpmClient,
  TpmError,
  TpmResponseIntegrityError,
  type TpmScope,
  unsealImportedBlob,
  unsealSecret,
  withTpmScope,
} from '@rackseal/tpm2';
import { constants, publicEncrypt, randomBytes } from 'node:crypto';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { TcpProxy } from './support/tcp-proxy';
import { occurrences, sessionsOf, TpmBus } from './support/tpm-bus';
import { tpm2 } from './support/tpm2-tools';

const NOTHING_LOADED = { 'handles-transient': '', 'handles-loaded-session': '', 'handles-saved-session': '' };
const SELECTION = parsePcrSelection('sha256:0,7');
const LABEL = Buffer.from('rackseal-delivery\0');

/** The secrets one agent run moves through the TPM, by what they stand for. */
interface Secrets {
  readonly 'activation secret (RSA EK)': Buffer;
  readonly 'activation secret (P-256 EK)': Buffer;
  readonly 'node credential (sealed under the SRK)': Buffer;
  readonly 'content key (import blob under the EK)': Buffer;
  readonly 'content key (RSA-OAEP to the certified key)': Buffer;
}

const freshSecrets = (): Secrets => ({
  'activation secret (RSA EK)': randomBytes(32),
  'activation secret (P-256 EK)': randomBytes(32),
  'node credential (sealed under the SRK)': randomBytes(64),
  'content key (import blob under the EK)': randomBytes(32),
  'content key (RSA-OAEP to the certified key)': randomBytes(32),
});

/** The commands of a run that carry a secret, with how many handles precede their authorization area. */
const SECRET_COMMANDS = new Map<number, number>([
  [TPM_CC.TPM_CC_ActivateCredential, 2],
  [TPM_CC.TPM_CC_Unseal, 1],
  [TPM_CC.TPM_CC_RSA_Decrypt, 1],
  [TPM_CC.TPM_CC_Import, 1],
  [TPM_CC.TPM_CC_Create, 1],
]);

/** Offset of the last byte of a command's authorization area: the last session's HMAC. */
function lastAuthByte(command: Buffer, handles: number): number {
  const at = 10 + 4 * handles;
  return at + 4 + command.readUInt32BE(at) - 1;
}

const flipped = (bytes: Buffer, at: number): Buffer => {
  const copy = Buffer.from(bytes);
  copy[at] = copy[at]! ^ 0x01;
  return copy;
};

describe('bus capture: what a sniffer between the agent and the TPM sees', () => {
  const fixture = useSwtpms(1, { p256: true });
  let tpm: SwtpmMachine;
  let bus: TpmBus;
  let relay: TcpProxy;
  let client: TpmClient;

  beforeAll(async () => {
    tpm = fixture.at(0);
    bus = new TpmBus();
    relay = await TcpProxy.start({ host: tpm.host, port: tpm.port }, () => bus.interceptor());
    client = new TpmClient(await openTransport(`swtpm:127.0.0.1:${relay.port}`));
  });

  afterAll(async () => {
    await client?.close();
    await relay?.cut();
  });

  /** swtpm serves one connection at a time: the client's is closed before tpm2-tools asks, directly. */
  async function loadedHandles(): Promise<Record<string, string>> {
    await client.close();
    const out: Record<string, string> = {};
    for (const cap of Object.keys(NOTHING_LOADED)) {
      out[cap] = (await tpm2(tpm, 'getcap', cap)).stdout.toString().trim();
    }
    return out;
  }

  async function inScope<T>(work: (scope: TpmScope) => Promise<T>): Promise<T> {
    try {
      return await withTpmScope(client, work);
    } finally {
      expect(await loadedHandles()).toEqual(NOTHING_LOADED);
    }
  }

  /** `{}` runs every operation with its default (salted); `{ salt: false }` turns salting off. */
  type SaltChoice = Record<string, never> | { readonly salt: false };

  async function activate(kind: EkKind, secret: Buffer, salt: SaltChoice): Promise<Buffer> {
    return inScope(async (s) => {
      const ek = await getEndorsementKey(s, kind);
      const ak = await createAttestationKey(s, ek);
      return activateCredential(s, ak, ek, makeCredential(ek.public, ak.name, secret), salt);
    });
  }

  /** Everything an agent does with secrets in the TPM, in one recorded run; returns what came out. */
  async function agentRun(secrets: Secrets, salt: SaltChoice): Promise<Record<keyof Secrets, Buffer>> {
    const policy = new PolicyDigest(TPM_ALG_ID.TPM_ALG_SHA256).pcr(SELECTION, (await pcrRead(client, SELECTION)).values).digest;
    const importBlob = await inScope(async (s) =>
      createImportBlob((await getEndorsementKey(s, 'rsa-2048')).public, secrets['content key (import blob under the EK)'], { authPolicy: policy }),
    );
    bus.clear();
    const rsaActivated = await activate('rsa-2048', secrets['activation secret (RSA EK)'], salt);
    const p256Activated = await activate('ecc-p256', secrets['activation secret (P-256 EK)'], salt);
    const blob = await inScope((s) => sealSecret(s, secrets['node credential (sealed under the SRK)'], salt));
    const credential = await inScope((s) => unsealSecret(s, blob, salt));
    const contentKey = await inScope(async (s) => unsealImportedBlob(s, await getEndorsementKey(s, 'rsa-2048'), importBlob, SELECTION, salt));
    const decrypted = await inScope(async (s) => {
      const ek = await getEndorsementKey(s, 'rsa-2048');
      const ak = await createAttestationKey(s, ek);
      const key = await createCertifiedDecryptKey(s, ak, randomBytes(32));
      const message = secrets['content key (RSA-OAEP to the certified key)'];
      const cipherText = publicEncrypt({ key: publicKeyFromTpmt(key.public), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: LABEL }, message);
      return rsaOaepDecrypt(s, key, cipherText, LABEL, salt);
    });
    return {
      'activation secret (RSA EK)': rsaActivated,
      'activation secret (P-256 EK)': p256Activated,
      'node credential (sealed under the SRK)': credential,
      'content key (import blob under the EK)': contentKey,
      'content key (RSA-OAEP to the certified key)': decrypted,
    };
  }

  /** Where each secret, or any 8 consecutive bytes of it, occurs in the recording. */
  function sightings(secrets: Secrets): Record<string, { whole: number[]; windows: number }> {
    const recording = bus.bytes();
    const out: Record<string, { whole: number[]; windows: number }> = {};
    for (const [label, secret] of Object.entries(secrets) as [string, Buffer][]) {
      let windows = 0;
      for (let i = 0; i + 8 <= secret.length; i += 1) {
        windows += occurrences(recording, secret.subarray(i, i + 8)).length;
      }
      out[label] = { whole: occurrences(recording, secret), windows };
    }
    return out;
  }

  const returnedExactly = (results: Record<string, Buffer>, secrets: Secrets) =>
    expect(Object.fromEntries(Object.entries(results).map(([k, v]) => [k, v.toString('hex')]))).toEqual(
      Object.fromEntries(Object.entries(secrets).map(([k, v]) => [k, (v as Buffer).toString('hex')])),
    );

  it('salted (the default): every operation returns exactly its secret, and no secret — nor any 8 bytes of one — is on the bus', async () => {
    const secrets = freshSecrets();
    returnedExactly(await agentRun(secrets, {}), secrets);
    const recording = bus.bytes();
    expect(recording.length).toBeGreaterThan(10_000);
    const none = { whole: [], windows: 0 };
    expect(sightings(secrets)).toEqual(Object.fromEntries(Object.keys(secrets).map((k) => [k, none])));

    // Every command that carries a secret ran in a session with parameter encryption, started by a
    // StartAuthSession with a tpmKey (salted) and bind TPM_RH_NULL.
    const protectedCommands = bus.exchanges
      .map(({ command }) => command)
      .filter((command) => SECRET_COMMANDS.has(command.readUInt32BE(6)))
      .map((command) => {
        const sessions = sessionsOf(command, SECRET_COMMANDS.get(command.readUInt32BE(6))!);
        return `${commandName(command.readUInt32BE(6))}: ${sessions.some((s) => (s.attributes & 0x60) !== 0) ? 'encrypted' : 'CLEAR'}`;
      });
    expect(protectedCommands.sort()).toEqual(
      [
        'TPM2_ActivateCredential: encrypted', 'TPM2_ActivateCredential: encrypted',
        // Three AKs and the certified key: TPM-generated keys, no secret goes in.
        'TPM2_Create: CLEAR', 'TPM2_Create: CLEAR', 'TPM2_Create: CLEAR', 'TPM2_Create: CLEAR',
        'TPM2_Create: encrypted', // the node credential
        'TPM2_Import: encrypted', 'TPM2_RSA_Decrypt: encrypted', 'TPM2_Unseal: encrypted', 'TPM2_Unseal: encrypted',
      ].sort(),
    );
    const starts = bus.exchanges.map(({ command }) => command).filter((c) => c.readUInt32BE(6) === TPM_CC.TPM_CC_StartAuthSession);
    const salted = starts.filter((c) => c.readUInt32BE(10) !== TPM_RH.TPM_RH_NULL);
    expect(salted.length).toBeGreaterThanOrEqual(7);
    expect(salted.every((c) => c.readUInt32BE(14) === TPM_RH.TPM_RH_NULL)).toBe(true);
  });

  it('negative control, salting off: the same run puts every secret on the bus in clear (the search can fail)', async () => {
    const secrets = freshSecrets();
    returnedExactly(await agentRun(secrets, { salt: false }), secrets);
    const seen = sightings(secrets);
    for (const label of Object.keys(secrets)) {
      expect({ label, sighted: seen[label]!.whole.length > 0 }).toEqual({ label, sighted: true });
    }
    // The node credential twice: into Create, out of Unseal.
    expect(seen['node credential (sealed under the SRK)']!.whole).toHaveLength(2);
  });

  describe('a tampering bus', () => {
    it('one flipped byte in the encrypted outData of Unseal: TpmResponseIntegrityError, nothing decrypted, nothing left loaded', async () => {
      const secret = randomBytes(32);
      const blob = await inScope((s) => sealSecret(s, secret));
      // Response: header (10) ‖ parameterSize (4) ‖ outData.size (2) ‖ outData: flip its fourth byte.
      bus.tamperOnce((command, response) => (command.readUInt32BE(6) === TPM_CC.TPM_CC_Unseal ? flipped(response, 10 + 4 + 2 + 3) : undefined));
      const error = await inScope((s) => unsealSecret(s, blob)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(TpmResponseIntegrityError);
      expect({ command: (error as TpmResponseIntegrityError).command, session: (error as TpmResponseIntegrityError).session }).toEqual({ command: 'TPM2_Unseal', session: 0 });
      expect((error as Error).message).not.toContain(secret.toString('hex'));
      // The same blob unseals once the bus behaves.
      expect((await inScope((s) => unsealSecret(s, blob))).equals(secret)).toBe(true);
    });

    it('one flipped byte in the activated credential: TpmResponseIntegrityError on the EK\'s session (session 1)', async () => {
      bus.tamperOnce((command, response) => (command.readUInt32BE(6) === TPM_CC.TPM_CC_ActivateCredential ? flipped(response, 10 + 4 + 2) : undefined));
      const error = await activate('rsa-2048', randomBytes(32), {}).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(TpmResponseIntegrityError);
      expect({ command: (error as TpmResponseIntegrityError).command, session: (error as TpmResponseIntegrityError).session }).toEqual({ command: 'TPM2_ActivateCredential', session: 1 });
    });

    it('the TPM checks our HMACs: a flipped command HMAC byte is refused (HMAC session of RSA_Decrypt, salted policy session of ActivateCredential)', async () => {
      const refusals: string[] = [];
      for (const [code, handles, run] of [
        [
          TPM_CC.TPM_CC_RSA_Decrypt,
          1,
          () =>
            inScope(async (s) => {
              const ek = await getEndorsementKey(s, 'rsa-2048');
              const key = await createCertifiedDecryptKey(s, await createAttestationKey(s, ek), randomBytes(32));
              const cipherText = publicEncrypt({ key: publicKeyFromTpmt(key.public), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: LABEL }, randomBytes(32));
              return rsaOaepDecrypt(s, key, cipherText, LABEL);
            }),
        ],
        [TPM_CC.TPM_CC_ActivateCredential, 2, () => activate('rsa-2048', randomBytes(32), {})],
      ] as const) {
        bus.tamperCommandOnce((command) => (command.readUInt32BE(6) === code ? flipped(command, lastAuthByte(command, handles)) : undefined));
        const error = await run().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(TpmError);
        const rc = (error as TpmError).rc;
        refusals.push(`${(error as TpmError).command}: ${rc.name} on ${rc.position?.kind} ${rc.position?.index}`);
      }
      expect(refusals).toEqual(['TPM2_RSA_Decrypt: TPM_RC_BAD_AUTH on session 1', 'TPM2_ActivateCredential: TPM_RC_BAD_AUTH on session 2']);
    });
  });
});
