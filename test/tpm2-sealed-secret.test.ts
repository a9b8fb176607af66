/**
 * sealSecret / unsealSecret (libs/tpm2 operations/sealed-secret.ts) against two swtpm "machines":
 * the round trip, the refusals (sizes, another kind of blob, a blob from the other TPM — by the
 * parent check and by the TPM's own integrity check — and an altered private area), and tpm2-tools
 * as the oracle both ways (tpm2_load + tpm2_unseal of our blob; our unseal of a tpm2_create -i
 * object). After every operation the TPM must hold no transient object and no session.
 */
import {
  commandName,
  createAttestationKey,
  createCertifiedDecryptKey,
  EmptySealedSecretError,
  getEndorsementKey,
  getStoragePrimary,
  KeyBlobParentError,
  type KeyBlob,
  marshalKeyBlob,
  marshalTpm2bPrivate,
  marshalTpm2bPublic,
  NotASealedSecretError,
  openTransport,
  passwordAuth,
  persistStoragePrimary,
  SealedDataTooLargeError,
  SealedSecretRefusedError,
  SEALED_SECRET_TEMPLATE,
  sealSecret,
  SRK_PERSISTENT_HANDLE,
  TPM_ALG_ID,
  TPM_RH,
  tpm2EvictControl,
  TpmClient,
  TpmError,
  type TpmScope,
  type TpmTransport,
  unmarshalKeyBlob,
  unmarshalTpm2bPrivate,
  unmarshalTpm2bPublic,
  unsealSecret,
  withTpmScope,
} from '@rackseal/tpm2';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { runTool, tpm2 } from './support/tpm2-tools';

const NOTHING_LOADED = { 'handles-transient': '', 'handles-loaded-session': '', 'handles-saved-session': '' };

/** Records the command codes sent, so a refusal can be shown to come before any TPM command. */
class RecordingTransport implements TpmTransport {
  readonly codes: number[] = [];
  constructor(private readonly inner: TpmTransport) {}
  get description(): string {
    return this.inner.description;
  }
  transmit(command: Buffer): Promise<Buffer> {
    this.codes.push(command.readUInt32BE(6));
    return this.inner.transmit(command);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

/** A KeyBlob's public and private halves as tpm2_load -u / -r read them. */
const publicFile = (blob: KeyBlob) => {
  const size = Buffer.alloc(2);
  size.writeUInt16BE(blob.public.raw.length);
  return Buffer.concat([size, blob.public.raw]);
};

describe('sealSecret / unsealSecret against swtpm', () => {
  const fixture = useSwtpms(2);
  let dir: string;
  const machines: { tpm: SwtpmMachine; transport: RecordingTransport; client: TpmClient }[] = [];
  const at = (file: string) => join(dir, file);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rackseal-sealed-secret-'));
    for (const tpm of [fixture.at(0), fixture.at(1)]) {
      const transport = new RecordingTransport(await openTransport(tpm.device));
      machines.push({ tpm, transport, client: new TpmClient(transport) });
    }
  });

  afterAll(async () => {
    for (const m of machines) {
      await m.client.close();
    }
    await rm(dir, { recursive: true, force: true });
  });

  async function loadedHandles(m: (typeof machines)[number]): Promise<Record<string, string>> {
    await m.client.close();
    const out: Record<string, string> = {};
    for (const cap of Object.keys(NOTHING_LOADED)) {
      out[cap] = (await tpm2(m.tpm, 'getcap', cap)).stdout.toString().trim();
    }
    return out;
  }

  /** Runs `work` in a scope on machine `index`; afterwards that TPM must hold nothing. */
  async function inScope<T>(index: number, work: (scope: TpmScope) => Promise<T>): Promise<T> {
    const m = machines[index]!;
    try {
      return await withTpmScope(m.client, work);
    } finally {
      expect(await loadedHandles(m)).toEqual(NOTHING_LOADED);
    }
  }

  async function failing(index: number, work: (scope: TpmScope) => Promise<unknown>): Promise<unknown> {
    const error = await inScope(index, work).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeDefined();
    return error;
  }

  /** The command names machine `index` was sent while `work` ran. */
  async function commandsOf(index: number, work: () => Promise<unknown>): Promise<string[]> {
    const codes = machines[index]!.transport.codes;
    const start = codes.length;
    await work().catch(() => undefined);
    return codes.slice(start).map((c) => commandName(c).replace(/^TPM2_/, ''));
  }

  it('round trip: the blob (bytes only) unseals to the secret, also after a reboot; the object is 0x00000452 keyedHash, the secret is nowhere in the blob', async () => {
    const secret = randomBytes(32);
    const bytes = await inScope(0, async (s) => marshalKeyBlob(await sealSecret(s, secret)));
    const blob = unmarshalKeyBlob(bytes);
    expect({ type: blob.public.type, attributes: blob.public.objectAttributes, nameAlg: blob.public.nameAlg }).toEqual({
      type: TPM_ALG_ID.TPM_ALG_KEYEDHASH,
      attributes: 0x00000452,
      nameAlg: TPM_ALG_ID.TPM_ALG_SHA256,
    });
    expect(bytes.includes(secret)).toBe(false);
    expect((await inScope(0, (s) => unsealSecret(s, blob))).equals(secret)).toBe(true);
    await machines[0]!.client.close();
    await machines[0]!.tpm.reboot();
    const commands = await commandsOf(0, async () => {
      expect((await inScope(0, (s) => unsealSecret(s, unmarshalKeyBlob(bytes)))).equals(secret)).toBe(true);
    });
    // The SRK is derived again (none persisted); the Unseal runs in an HMAC session salted to it, which
    // the TPM closes; then the object and the SRK are flushed.
    expect(commands).toEqual(['CreatePrimary', 'Load', 'StartAuthSession', 'Unseal', 'FlushContext', 'FlushContext']);
  });

  it('with the SRK persisted at 0x81000001 the blob records it and unseals with no key derived; once evicted, the SRK is derived again', async () => {
    const client = machines[0]!.client;
    await inScope(0, async (s) => persistStoragePrimary(s, await getStoragePrimary(s, { persistentHandle: null })));
    try {
      const secret = randomBytes(32);
      const blob = await inScope(0, (s) => sealSecret(s, secret));
      expect(blob.parent.persistentHandle).toBe(SRK_PERSISTENT_HANDLE);
      const commands = await commandsOf(0, async () => expect((await inScope(0, (s) => unsealSecret(s, blob))).equals(secret)).toBe(true));
      expect(commands).toEqual(['ReadPublic', 'Load', 'StartAuthSession', 'Unseal', 'FlushContext']);
      await tpm2EvictControl(client, TPM_RH.TPM_RH_OWNER, passwordAuth(), SRK_PERSISTENT_HANDLE, SRK_PERSISTENT_HANDLE);
      expect((await inScope(0, (s) => unsealSecret(s, blob))).equals(secret)).toBe(true);
    } finally {
      await tpm2EvictControl(client, TPM_RH.TPM_RH_OWNER, passwordAuth(), SRK_PERSISTENT_HANDLE, SRK_PERSISTENT_HANDLE).catch(() => undefined);
    }
  });

  it('seals 1 and 128 bytes (MAX_SYM_DATA); refuses 0 and 129 bytes before any TPM command', async () => {
    for (const size of [1, 128]) {
      const secret = randomBytes(size);
      const blob = await inScope(0, (s) => sealSecret(s, secret));
      expect((await inScope(0, (s) => unsealSecret(s, blob))).equals(secret)).toBe(true);
    }
    let error: unknown;
    expect(await commandsOf(0, async () => (error = await failing(0, (s) => sealSecret(s, Buffer.alloc(0)))))).toEqual([]);
    expect(error).toBeInstanceOf(EmptySealedSecretError);
    expect(await commandsOf(0, async () => (error = await failing(0, (s) => sealSecret(s, randomBytes(129)))))).toEqual([]);
    expect(error).toBeInstanceOf(SealedDataTooLargeError);
    expect((error as Error).message).toBe('sealed data of 129 bytes exceeds MAX_SYM_DATA (128 bytes)');
  });

  it('a blob from TPM A given to TPM B: refused as other-parent (B derives another SRK) before any Load', async () => {
    const secret = randomBytes(32);
    const blob = await inScope(0, (s) => sealSecret(s, secret));
    let error: unknown;
    const commands = await commandsOf(1, async () => (error = await failing(1, (s) => unsealSecret(s, blob))));
    expect(commands).toEqual(['CreatePrimary', 'FlushContext']);
    expect(error).toBeInstanceOf(SealedSecretRefusedError);
    expect((error as SealedSecretRefusedError).reason).toBe('other-parent');
    expect((error as SealedSecretRefusedError).cause).toBeInstanceOf(KeyBlobParentError);
    expect((error as Error).message).toMatch(/^this TPM cannot load the sealed secret: it was sealed under a storage key this TPM does not have \(another TPM, or this one was cleared\) \(key blob parent is 000b[0-9a-f]{64} in this TPM, the blob was made under 000b[0-9a-f]{64}\)$/);
    expect((error as Error).message).not.toContain(secret.toString('hex'));
  });

  it('the same blob relabelled with TPM B\'s SRK: TPM B\'s own check refuses it, TPM2_Load TPM_RC_INTEGRITY on parameter 1', async () => {
    const secret = randomBytes(32);
    const blob = await inScope(0, (s) => sealSecret(s, secret));
    const srkB = await inScope(1, (s) => getStoragePrimary(s));
    expect(srkB.name.equals(blob.parent.name)).toBe(false);
    const relabelled: KeyBlob = { ...blob, parent: srkB.descriptor };
    const error = await failing(1, (s) => unsealSecret(s, relabelled));
    expect(error).toBeInstanceOf(SealedSecretRefusedError);
    expect((error as SealedSecretRefusedError).reason).toBe('integrity');
    const cause = (error as SealedSecretRefusedError).cause as TpmError;
    expect(cause).toBeInstanceOf(TpmError);
    expect({ command: cause.command, name: cause.rc.name, position: cause.rc.position }).toEqual({
      command: 'TPM2_Load',
      name: 'TPM_RC_INTEGRITY',
      position: { kind: 'parameter', index: 1 },
    });
    expect((error as Error).message).toContain("the TPM found its private area was not made under this TPM's storage key, or was altered");
  });

  it('on its own TPM, an altered private area is TPM_RC_INTEGRITY; so is a truncated or empty one, or an altered public area; nothing stays loaded', async () => {
    const blob = await inScope(0, (s) => sealSecret(s, randomBytes(32)));
    const flipped = Buffer.from(blob.private.encrypted);
    flipped[flipped.length - 1] = flipped[flipped.length - 1]! ^ 0x01;
    const altered = await failing(0, (s) => unsealSecret(s, { ...blob, private: { ...blob.private, encrypted: flipped } }));
    expect((altered as SealedSecretRefusedError).reason).toBe('integrity');
    const truncated = await failing(0, (s) => unsealSecret(s, { ...blob, private: { ...blob.private, encrypted: blob.private.encrypted.subarray(0, 4) } }));
    expect(truncated).toBeInstanceOf(SealedSecretRefusedError);
    expect((truncated as SealedSecretRefusedError).reason).toBe('integrity');
    const empty = await failing(0, (s) => unsealSecret(s, { ...blob, private: { integrityOuter: Buffer.alloc(0), encrypted: Buffer.alloc(0) } }));
    expect((empty as SealedSecretRefusedError).reason).toBe('integrity');
    const longUnique = unmarshalTpm2bPublic(marshalTpm2bPublic({ ...SEALED_SECRET_TEMPLATE, unique: randomBytes(40) }));
    // The TPM checks the private area's HMAC over the Name first, so an altered public area is caught the same way.
    const alteredPublic = await failing(0, (s) => unsealSecret(s, { ...blob, public: longUnique }));
    expect((alteredPublic as SealedSecretRefusedError).reason).toBe('integrity');
  });

  it('another kind of key blob (the certified decrypt key) is NotASealedSecretError before any TPM command', async () => {
    const keyBlob = await inScope(0, async (s) => {
      // The persisted RSA EK: swtpm has three object slots, and AK, SRK and key take them.
      const ek = await getEndorsementKey(s, 'rsa-2048');
      return (await createCertifiedDecryptKey(s, await createAttestationKey(s, ek), randomBytes(16))).blob;
    });
    let error: unknown;
    expect(await commandsOf(0, async () => (error = await failing(0, (s) => unsealSecret(s, keyBlob))))).toEqual([]);
    expect(error).toBeInstanceOf(NotASealedSecretError);
    expect((error as Error).message).toBe('not a sealed secret: its object type is 0x1, not TPM_ALG_KEYEDHASH');
    // A keyedHash object that may leave its TPM (fixedParent clear) is refused too.
    const sealed = await inScope(0, (s) => sealSecret(s, randomBytes(8)));
    const movable = unmarshalTpm2bPublic(
      (() => {
        const file = publicFile(sealed);
        file.writeUInt32BE(sealed.public.objectAttributes & ~0x10, 2 + 4);
        return file;
      })(),
    );
    expect(await commandsOf(0, async () => (error = await failing(0, (s) => unsealSecret(s, { ...sealed, public: movable }))))).toEqual([]);
    expect(error).toBeInstanceOf(NotASealedSecretError);
    expect((error as Error).message).toBe('not a sealed secret: fixedTPM and fixedParent must both be set (attributes 0x00000442)');
  });

  describe('tpm2-tools as the oracle', () => {
    /** tpm2_createprimary of the Provisioning Guidance P-256 SRK (what getStoragePrimary derives). */
    async function toolsSrk(tpm: SwtpmMachine, context: string): Promise<void> {
      await runTool(
        'tpm2_createprimary',
        ['-C', 'o', '-g', 'sha256', '-G', 'ecc256:null:aes128cfb', '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt', '-u', '-', '-c', context],
        { env: { TPM2TOOLS_TCTI: tpm.tcti }, input: Buffer.alloc(64) },
      );
    }

    it('tpm2_load -C <SRK> -u pub -r priv and tpm2_unseal recover the secret from our blob', async () => {
      const tpm = machines[0]!.tpm;
      const secret = randomBytes(48);
      const blob = await inScope(0, (s) => sealSecret(s, secret));
      await writeFile(at('ours.pub'), publicFile(blob));
      await writeFile(at('ours.priv'), marshalTpm2bPrivate(blob.private));
      try {
        await toolsSrk(tpm, at('srk.ctx'));
        await tpm2(tpm, 'load', '-C', at('srk.ctx'), '-u', at('ours.pub'), '-r', at('ours.priv'), '-c', at('ours.ctx'));
        await tpm2(tpm, 'flushcontext', '-t');
        const unsealed = (await tpm2(tpm, 'unseal', '-c', at('ours.ctx'))).stdout;
        expect(unsealed.equals(secret)).toBe(true);
      } finally {
        await tpm2(tpm, 'flushcontext', '-t');
      }
      expect(await loadedHandles(machines[0]!)).toEqual(NOTHING_LOADED);
    });

    it('our unsealSecret recovers what tpm2_create -i sealed under the same SRK with the same attributes', async () => {
      const tpm = machines[0]!.tpm;
      const secret = randomBytes(20);
      await writeFile(at('theirs.secret'), secret);
      try {
        await toolsSrk(tpm, at('srk2.ctx'));
        await tpm2(tpm, 'create', '-C', at('srk2.ctx'), '-g', 'sha256', '-a', 'fixedtpm|fixedparent|userwithauth|noda', '-i', at('theirs.secret'), '-u', at('theirs.pub'), '-r', at('theirs.priv'));
      } finally {
        await tpm2(tpm, 'flushcontext', '-t');
      }
      const srk = await inScope(0, (s) => getStoragePrimary(s));
      const blob: KeyBlob = {
        parent: srk.descriptor,
        public: unmarshalTpm2bPublic(await readFile(at('theirs.pub'))),
        private: unmarshalTpm2bPrivate(await readFile(at('theirs.priv'))),
      };
      expect(blob.public.objectAttributes).toBe(0x00000452);
      expect((await inScope(0, (s) => unsealSecret(s, unmarshalKeyBlob(marshalKeyBlob(blob))))).equals(secret)).toBe(true);
    });
  });
});
