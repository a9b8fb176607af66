/**
 * The agent's high-level TPM operations (libs/tpm2 operations/*) driven natively against swtpm, each
 * cross-checked by an independent oracle: tpm2_readpublic and the EK certificates for keys,
 * server-side makeCredential for activation, verifyQuote and tpm2_checkquote for quotes,
 * verifyCertify for certification, node:crypto OAEP for decryption, createImportBlob for sealed
 * blobs. After every operation, successful or not, `tpm2_getcap handles-transient`,
 * `handles-loaded-session` and `handles-saved-session` must be empty: swtpm has no resource manager.
 *
 * EKs: RSA-2048 persisted at 0x81010001, P-256 from the L-2 template (swtpm persists none; the
 * fixture only stores its certificate), P-384 persisted at 0x81010016 (found by shape, not by handle).
 * swtpm serves one connection at a time, so the client's connection is closed before each tool run.
 */
import {
  activateCredential,
  AK_TEMPLATE_ECC,
  checkAkAttributes,
  checkCertifiedKeyAttributes,
  commandName,
  createAttestationKey,
  createCertifiedDecryptKey,
  createImportBlob,
  type EkKind,
  EK_TEMPLATE_ECC_L2,
  ekPubHash,
  getEndorsementKey,
  getStoragePrimary,
  KeyBlobParentError,
  loadKeyBlob,
  makeCredential,
  marshalKeyBlob,
  marshalTpm2bPublic,
  marshalTpmtPublic,
  nullTicket,
  objectName,
  OaepLabelError,
  openTransport,
  parsePcrSelection,
  pcrDigest,
  pcrRead,
  persistStoragePrimary,
  PolicyDigest,
  policyOr,
  publicKeyFromTpmt,
  quotePcrs,
  rsaOaepDecrypt,
  SRK_PERSISTENT_HANDLE,
  SRK_TEMPLATE_ECC,
  SRK_TEMPLATE_RSA,
  TPM_ALG_ID,
  TPM_RH,
  TPM_SE,
  TPM_ST_TICKET,
  tpm2EvictControl,
  tpm2FlushContext,
  tpm2LoadExternal,
  tpm2PolicyAuthorize,
  tpm2PolicyGetDigest,
  tpm2PolicyOR,
  tpm2PolicyPCR,
  tpm2StartAuthSession,
  tpm2VerifySignature,
  TpmClient,
  TpmError,
  type TpmScope,
  type TpmTransport,
  type TPML_PCR_SELECTION,
  tpmtPublicFromKey,
  unmarshalKeyBlob,
  unmarshalTpm2bPublic,
  unsealImportedBlob,
  passwordAuth,
  verifyCertify,
  verifyQuote,
  withTpmScope,
} from '@rackseal/tpm2';
import { constants, createHash, generateKeyPairSync, publicEncrypt, randomBytes, sign, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { runTool, tpm2 } from './support/tpm2-tools';

/** Counts what the client sends, so each operation's TPM command sequence can be checked. */
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

const SELECTION = 'sha256:0,7';
const NOTHING_LOADED = { 'handles-transient': '', 'handles-loaded-session': '', 'handles-saved-session': '' };
const EK_KINDS: readonly EkKind[] = ['rsa-2048', 'ecc-p256', 'ecc-p384'];
const names = (codes: readonly number[]) => codes.map((c) => commandName(c).replace(/^TPM2_/, ''));

/**
 * tpm2-tools' "serialized" PCR file (what tpm2_quote -o writes without -F values): a little-endian
 * dump of TPML_PCR_SELECTION (count, 16 slots of hash u16, sizeofSelect u8, pcrSelect[4], pad) ‖
 * u32 number of TPML_DIGESTs ‖ each TPML_DIGEST (count, 8 × (u16 size, 64-byte buffer)). tpm2_checkquote
 * 5.4 refuses -F values files of 8 or more PCRs ("Failed to hash PCR values"), so larger quotes are
 * given to it in this form. One bank only.
 */
function toolsSerializedPcrs(selection: TPML_PCR_SELECTION, values: readonly Buffer[]): Buffer {
  const bank = selection[0]!;
  const head = Buffer.alloc(4 + 16 * 8 + 4);
  head.writeUInt32LE(1, 0);
  head.writeUInt16LE(bank.hash, 4);
  head.writeUInt8(bank.sizeofSelect, 6);
  for (const pcr of bank.pcrs) {
    head[7 + (pcr >> 3)] = head[7 + (pcr >> 3)]! | (1 << (pcr & 7));
  }
  const lists: Buffer[] = [];
  for (let i = 0; i < values.length; i += 8) {
    const list = Buffer.alloc(4 + 8 * 66);
    const chunk = values.slice(i, i + 8);
    list.writeUInt32LE(chunk.length, 0);
    chunk.forEach((value, j) => {
      list.writeUInt16LE(value.length, 4 + j * 66);
      value.copy(list, 6 + j * 66);
    });
    lists.push(list);
  }
  head.writeUInt32LE(lists.length, 132);
  return Buffer.concat([head, ...lists]);
}

describe('libs/tpm2 client operations against swtpm', () => {
  const fixture = useSwtpms(1, { p256: true });
  let tpm: SwtpmMachine;
  let transport: RecordingTransport;
  let client: TpmClient;
  let dir: string;
  /** What beforeAll extended PCR 0 with, to re-measure after a reboot. */
  const pcr0Measurement = randomBytes(32).toString('hex');
  /** Commands per operation, printed at the end (the report's per-operation counts). */
  const counts = new Map<string, string[]>();
  const at = (file: string) => join(dir, file);

  beforeAll(async () => {
    tpm = fixture.at(0);
    transport = new RecordingTransport(await openTransport(tpm.device));
    client = new TpmClient(transport);
    dir = await mkdtemp(join(tmpdir(), 'rackseal-ops-'));
    // PCR 0 gets a non-zero value so sealing binds to something other than the reset state.
    await tpm.extendPcr(0, 'sha256', pcr0Measurement);
  });

  afterAll(async () => {
    await client?.close();
    await rm(dir, { recursive: true, force: true });
    const table = [...counts].map(([op, cmds]) => `${op}: ${cmds.length} — ${cmds.join(', ')}`).join('\n');
    console.log(`TPM commands per operation:\n${table}`);
  });

  /** Runs tpm2-tools (or the fixture) on their own connection. */
  async function tools<T>(run: () => Promise<T>): Promise<T> {
    await client.close();
    return run();
  }

  async function loadedHandles(): Promise<Record<string, string>> {
    await client.close();
    const out: Record<string, string> = {};
    for (const cap of Object.keys(NOTHING_LOADED)) {
      out[cap] = (await tpm2(tpm, 'getcap', cap)).stdout.toString().trim();
    }
    return out;
  }

  /** The commands `work` sent, recorded under `label`. */
  async function counted<T>(label: string, work: () => Promise<T>): Promise<T> {
    const start = transport.codes.length;
    try {
      return await work();
    } finally {
      counts.set(label, names(transport.codes.slice(start)));
    }
  }

  /** A scope around `work`; afterwards the TPM must hold no transient object and no session. */
  async function inScope<T>(work: (scope: TpmScope) => Promise<T>): Promise<T> {
    try {
      return await withTpmScope(client, work);
    } finally {
      expect(await loadedHandles()).toEqual(NOTHING_LOADED);
    }
  }

  /**
   * Inside a scope, after one operation: no session at all, and exactly the transient objects the
   * caller holds (what operations hand back), nothing an operation used internally.
   */
  async function expectHeld(handles: readonly number[]): Promise<void> {
    const held = handles.filter((h) => h >>> 24 === 0x80).map((h) => `- 0x${h.toString(16)}`).sort();
    const loaded = await loadedHandles();
    expect({ ...loaded, 'handles-transient': loaded['handles-transient']!.split('\n').filter((l) => l !== '').sort() }).toEqual({
      ...NOTHING_LOADED,
      'handles-transient': held,
    });
  }

  /** The same for work that must fail: returns the error. */
  async function failingInScope(work: (scope: TpmScope) => Promise<unknown>): Promise<unknown> {
    const error = await inScope(work).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeDefined();
    return error;
  }

  function expectTpmError(error: unknown, name: string, position: { kind: string; index: number }, code: number): void {
    expect(error).toBeInstanceOf(TpmError);
    const rc = (error as TpmError).rc;
    expect({ name: rc.name, position: rc.position, code: `0x${rc.code.toString(16)}` }).toEqual({ name, position, code: `0x${code.toString(16)}` });
  }

  async function certificateHash(kind: EkKind): Promise<string> {
    const der = kind === 'rsa-2048' ? await tpm.rsaEkCertDer() : kind === 'ecc-p256' ? await tpm.p256EkCertDer() : await tpm.eccEkCertDer();
    return ekPubHash(new X509Certificate(der));
  }

  async function readPublicFile(handleOrContext: string, file: string): Promise<Buffer> {
    await tools(() => tpm2(tpm, 'readpublic', '-c', handleOrContext, '-o', at(file)));
    return readFile(at(file));
  }

  const tpm2bOf = (pub: { raw: Buffer }) => marshalTpm2bPublic(unmarshalTpm2bPublic(Buffer.concat([Buffer.from([pub.raw.length >> 8, pub.raw.length & 0xff]), pub.raw])));

  describe('getEndorsementKey', () => {
    it('RSA-2048: the persisted 0x81010001 with one ReadPublic; equals tpm2_readpublic and the EK certificate key', async () => {
      const ek = await inScope((s) => counted('getEndorsementKey rsa-2048 (persisted)', () => getEndorsementKey(s, 'rsa-2048')));
      expect(counts.get('getEndorsementKey rsa-2048 (persisted)')).toEqual(['ReadPublic']);
      expect({ handle: ek.handle, source: ek.source }).toEqual({ handle: 0x81010001, source: 'persistent' });
      const theirs = await readPublicFile('0x81010001', 'ek-rsa.pub');
      expect(tpm2bOf(ek.public).toString('hex')).toBe(theirs.toString('hex'));
      expect(ek.name.toString('hex')).toBe(objectName(unmarshalTpm2bPublic(theirs)).toString('hex'));
      expect(ekPubHash(ek.public)).toBe(await certificateHash('rsa-2048'));
    });

    it('P-384: found at 0x81010016 by its H-3 shape among the persistent handles; equals tpm2_readpublic and the certificate', async () => {
      const ek = await inScope((s) => counted('getEndorsementKey ecc-p384 (persisted, scanned)', () => getEndorsementKey(s, 'ecc-p384')));
      expect(counts.get('getEndorsementKey ecc-p384 (persisted, scanned)')).toEqual(['GetCapability', 'ReadPublic', 'ReadPublic']);
      expect({ handle: ek.handle, source: ek.source }).toEqual({ handle: 0x81010016, source: 'persistent' });
      const theirs = await readPublicFile('0x81010016', 'ek-p384.pub');
      expect(tpm2bOf(ek.public).toString('hex')).toBe(theirs.toString('hex'));
      expect(ekPubHash(ek.public)).toBe(await certificateHash('ecc-p384'));
    });

    it('P-256: derived with CreatePrimary from the L-2 template (none persisted), flushed with the scope; equals tpm2_createek and the certificate', async () => {
      const ek = await inScope((s) => counted('getEndorsementKey ecc-p256 (CreatePrimary)', () => getEndorsementKey(s, 'ecc-p256')));
      expect(counts.get('getEndorsementKey ecc-p256 (CreatePrimary)')).toEqual([
        'NV_ReadPublic', 'NV_ReadPublic', 'GetCapability', 'ReadPublic', 'ReadPublic', 'CreatePrimary',
      ]);
      expect({ transient: ek.handle >>> 24 === 0x80, source: ek.source }).toEqual({ transient: true, source: 'default-template' });
      await tools(async () => {
        try {
          await tpm2(tpm, 'createek', '-G', 'ecc', '-c', at('ek-p256.ctx'), '-u', at('ek-p256.pub'));
        } finally {
          await tpm2(tpm, 'flushcontext', '-t');
        }
      });
      expect(tpm2bOf(ek.public).toString('hex')).toBe((await readFile(at('ek-p256.pub'))).toString('hex'));
      expect(ekPubHash(ek.public)).toBe(await certificateHash('ecc-p256'));
    });

    it('P-256 with an EK template (0x01c0000c) and nonce (0x01c0000b) in NV: the nonce goes into unique (tpm2_createprimary with that unique agrees)', async () => {
      const nonce = randomBytes(16);
      const template = marshalTpmtPublic(EK_TEMPLATE_ECC_L2);
      await writeFile(at('ek.nonce'), nonce);
      await writeFile(at('ek.template'), template);
      await tools(async () => {
        for (const [index, file, size] of [['0x01c0000b', 'ek.nonce', nonce.length], ['0x01c0000c', 'ek.template', template.length]] as const) {
          await tpm2(tpm, 'nvdefine', index, '-C', 'o', '-s', String(size), '-a', 'ownerread|ownerwrite|authread');
          await tpm2(tpm, 'nvwrite', index, '-C', 'o', '-i', at(file));
        }
      });
      try {
        const ek = await inScope((s) => getEndorsementKey(s, 'ecc-p256'));
        expect(ek.source).toBe('nv-template');
        expect(ek.template.type === TPM_ALG_ID.TPM_ALG_ECC && ek.template.unique.x.subarray(0, 16).equals(nonce)).toBe(true);
        // tpm2_createek -t of tpm2-tools 5.4 copies the address of the nonce, not the nonce (fixed in
        // 5.5), so the oracle is tpm2_createprimary with the L-2 template and unique = nonce-padded x ‖ zero y.
        await writeFile(at('ek-policy.bin'), EK_TEMPLATE_ECC_L2.authPolicy);
        await tools(async () => {
          try {
            await runTool('tpm2_createprimary', [
              '-C', 'e', '-g', 'sha256', '-G', 'ecc256:null:aes128cfb', '-L', at('ek-policy.bin'),
              '-a', 'fixedtpm|fixedparent|sensitivedataorigin|adminwithpolicy|restricted|decrypt',
              '-u', '-', '-c', at('ek-nonce.ctx'),
            ], { env: { TPM2TOOLS_TCTI: tpm.tcti }, input: Buffer.concat([nonce, Buffer.alloc(16 + 32)]) });
            await tpm2(tpm, 'readpublic', '-c', at('ek-nonce.ctx'), '-o', at('ek-nonce.pub'));
          } finally {
            await tpm2(tpm, 'flushcontext', '-t');
          }
        });
        expect(tpm2bOf(ek.public).toString('hex')).toBe((await readFile(at('ek-nonce.pub'))).toString('hex'));
        expect(ekPubHash(ek.public)).not.toBe(await certificateHash('ecc-p256'));
      } finally {
        await tools(async () => {
          await tpm2(tpm, 'nvundefine', '0x01c0000b', '-C', 'o');
          await tpm2(tpm, 'nvundefine', '0x01c0000c', '-C', 'o');
        });
      }
    });
  });

  describe('createAttestationKey', () => {
    it.each([
      ['RSA AK under the RSA EK', 'rsa-2048' as EkKind, undefined],
      ['ECC AK under the P-256 EK', 'ecc-p256' as EkKind, AK_TEMPLATE_ECC],
      ['RSA AK under the P-384 EK (password: userWithAuth)', 'ecc-p384' as EkKind, undefined],
    ])('%s: tpm2_readpublic of the loaded AK equals ours; it passes checkAkAttributes', async (label, kind, template) => {
      await inScope(async (s) => {
        const ek = await getEndorsementKey(s, kind);
        const ak = await counted(`createAttestationKey (${label})`, () => createAttestationKey(s, ek, { template }));
        expect(checkAkAttributes(ak.public)).toEqual({ ok: true });
        expect(ak.name.equals(objectName(ak.public))).toBe(true);
        const theirs = await readPublicFile(`0x${ak.handle.toString(16)}`, 'ak.pub');
        expect(tpm2bOf(ak.public).toString('hex')).toBe(theirs.toString('hex'));
      });
    });

    it('under a policy EK one session serves Create and Load and the TPM closes it; on the P-384 EK no session at all', () => {
      expect(counts.get('createAttestationKey (RSA AK under the RSA EK)')).toEqual([
        'StartAuthSession', 'PolicySecret', 'Create', 'PolicySecret', 'Load',
      ]);
      expect(counts.get('createAttestationKey (RSA AK under the P-384 EK (password: userWithAuth))')).toEqual(['Create', 'Load']);
    });
  });

  describe('activateCredential', () => {
    it.each(EK_KINDS)('%s EK: a credential made by makeCredential for our AK activates to exactly the secret', async (kind) => {
      const secret = randomBytes(32);
      const activated = await inScope(async (s) => {
        const ek = await getEndorsementKey(s, kind);
        await expectHeld([ek.handle]);
        const ak = await createAttestationKey(s, ek);
        await expectHeld([ek.handle, ak.handle]);
        const challenge = makeCredential(ek.public, ak.name, secret);
        const result = await counted(`activateCredential (${kind})`, () => activateCredential(s, ak, ek, challenge));
        await expectHeld([ek.handle, ak.handle]);
        return result;
      });
      expect(activated.toString('hex')).toBe(secret.toString('hex'));
    });

    it.each(EK_KINDS)('%s EK: a credential made for another AK Name is TPM_RC_INTEGRITY on parameter 1, nothing left loaded', async (kind) => {
      const error = await failingInScope(async (s) => {
        const ek = await getEndorsementKey(s, kind);
        const ak = await createAttestationKey(s, ek);
        const otherName = Buffer.concat([ak.name.subarray(0, 2), randomBytes(ak.name.length - 2)]);
        return activateCredential(s, ak, ek, makeCredential(ek.public, otherName, randomBytes(32)));
      });
      expectTpmError(error, 'TPM_RC_INTEGRITY', { kind: 'parameter', index: 1 }, 0x1df);
    });

    it('P-384 EK through its PolicyB (PolicySecret, then PolicyOR with PolicyC) instead of the password', async () => {
      const secret = randomBytes(32);
      const activated = await inScope(async (s) => {
        const ek = await getEndorsementKey(s, 'ecc-p384');
        const ak = await createAttestationKey(s, ek, { prefer: 'policy' });
        return counted('activateCredential (ecc-p384, PolicyB)', () =>
          activateCredential(s, ak, ek, makeCredential(ek.public, ak.name, secret), { prefer: 'policy' }),
        );
      });
      expect(activated.equals(secret)).toBe(true);
      expect(counts.get('activateCredential (ecc-p384, PolicyB)')).toEqual(['StartAuthSession', 'PolicySecret', 'PolicyOR', 'ActivateCredential']);
      expect(counts.get('activateCredential (rsa-2048)')).toEqual(['StartAuthSession', 'PolicySecret', 'ActivateCredential']);
      // The password EK gets a salted HMAC session instead, so the credential is still encrypted on the bus.
      expect(counts.get('activateCredential (ecc-p384)')).toEqual(['StartAuthSession', 'ActivateCredential']);
    });
  });

  describe('quotePcrs', () => {
    it.each([
      ['RSA AK', undefined, SELECTION],
      ['ECC AK', AK_TEMPLATE_ECC, SELECTION],
      ['RSA AK, 12 PCRs (PCR_Read loops past 8 digests)', undefined, 'sha256:0,1,2,3,4,5,6,7,8,9,10,11'],
    ])('%s: verifyQuote and tpm2_checkquote accept it; tampered PCR values are refused by both', async (label, template, selectionText) => {
      const selection = parsePcrSelection(selectionText);
      const nonce = randomBytes(20);
      const { quote, akPublic } = await inScope(async (s) => {
        const ek = await getEndorsementKey(s, 'rsa-2048');
        const ak = await createAttestationKey(s, ek, { template });
        const q = await counted(`quotePcrs (${label})`, () => quotePcrs(s, ak, selection, nonce));
        return { quote: q, akPublic: ak.public };
      });
      const pcrs = Buffer.concat([...quote.pcrValues]);
      await writeFile(at('ak.pub'), marshalTpm2bPublic(akPublic));
      await writeFile(at('q.msg'), quote.message);
      await writeFile(at('q.sig'), quote.signatureBytes);
      // -F values for the brief's sha256:0,7 (the agent's q.pcrs format); tpm2-tools' own form above 7 PCRs.
      const pcrFile = (values: readonly Buffer[]) => (values.length < 8 ? Buffer.concat([...values]) : toolsSerializedPcrs(selection, values));
      await writeFile(at('q.pcrs'), pcrFile(quote.pcrValues));
      const ours = verifyQuote({ akPublic, attest: quote.message, signature: quote.signatureBytes, nonce, pcrValues: quote.pcrValues, selection });
      expect(ours.ok).toBe(true);
      // The serialized form carries its selection; checkquote 5.4 refuses it together with -l.
      const selectionArgs = quote.pcrValues.length < 8 ? ['-l', selectionText] : [];
      const checkquote = (pcrFile: string) =>
        tools(() => tpm2(tpm, 'checkquote', '-u', at('ak.pub'), '-m', at('q.msg'), '-s', at('q.sig'), '-f', pcrFile, ...selectionArgs, '-g', 'sha256', '-q', nonce.toString('hex')));
      await checkquote(at('q.pcrs'));
      // The values are the TPM's own, as tpm2_pcrread reports them.
      await tools(() => tpm2(tpm, 'pcrread', selectionText, '-o', at('pcrread.bin')));
      expect(pcrs.toString('hex')).toBe((await readFile(at('pcrread.bin'))).toString('hex'));

      const tampered = Buffer.from(pcrs);
      tampered[0] = tampered[0]! ^ 1;
      await writeFile(at('q.pcrs.bad'), pcrFile([tampered.subarray(0, 32), ...quote.pcrValues.slice(1)]));
      await expect(checkquote(at('q.pcrs.bad'))).rejects.toThrow(/tpm2_checkquote/);
      const refused = verifyQuote({ akPublic, attest: quote.message, signature: quote.signatureBytes, nonce, pcrValues: [tampered.subarray(0, 32), ...quote.pcrValues.slice(1)], selection });
      expect(refused.ok ? 'accepted' : refused.reason).toBe('pcr-digest-mismatch');
    });
  });

  describe('createCertifiedDecryptKey and rsaOaepDecrypt', () => {
    it('certify verifies with verifyCertify (and not for another nonce); attributes ok; tpm2_readpublic matches; OAEP-SHA256 with a label decrypts', async () => {
      const nonce = randomBytes(32);
      const message = randomBytes(32);
      const label = Buffer.from('rackseal-delivery\0');
      await inScope(async (s) => {
        const ek = await getEndorsementKey(s, 'rsa-2048');
        const ak = await createAttestationKey(s, ek);
        const key = await counted('createCertifiedDecryptKey (SRK derived)', () => createCertifiedDecryptKey(s, ak, nonce));
        const input = { akPublic: ak.public, attest: key.certification.attest.raw, signature: key.certification.signatureBytes, certifiedPublic: key.public };
        expect(verifyCertify({ ...input, nonce }).ok).toBe(true);
        const other = verifyCertify({ ...input, nonce: randomBytes(32) });
        expect(other.ok ? 'accepted' : other.reason).toBe('nonce-mismatch');
        expect(checkCertifiedKeyAttributes(key.public)).toEqual({ ok: true });
        const theirs = await readPublicFile(`0x${key.handle.toString(16)}`, 'key.pub');
        expect(tpm2bOf(key.public).toString('hex')).toBe(theirs.toString('hex'));

        const cipherText = publicEncrypt({ key: publicKeyFromTpmt(key.public), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: label }, message);
        const decrypted = await counted('rsaOaepDecrypt', () => rsaOaepDecrypt(s, key, cipherText, label));
        expect(decrypted.toString('hex')).toBe(message.toString('hex'));
        // Another label is another OAEP: the TPM refuses to decrypt.
        await expect(rsaOaepDecrypt(s, key, cipherText, Buffer.from('other\0'))).rejects.toBeInstanceOf(TpmError);
        await expect(rsaOaepDecrypt(s, key, cipherText, Buffer.from('rackseal-delivery'))).rejects.toBeInstanceOf(OaepLabelError);
      });
      expect(counts.get('createCertifiedDecryptKey (SRK derived)')).toEqual(['ReadPublic', 'CreatePrimary', 'Create', 'Load', 'FlushContext', 'Certify']);
      // Salted to the storage primary (derived: none is persisted), with the decrypted message encrypted on the bus.
      expect(counts.get('rsaOaepDecrypt')).toEqual(['ReadPublic', 'CreatePrimary', 'StartAuthSession', 'RSA_Decrypt', 'FlushContext']);
    });
  });

  describe('unsealImportedBlob', () => {
    const selection = parsePcrSelection(SELECTION);
    const data = randomBytes(32);
    let policy: Buffer;
    let pcr0: string;
    const blobs = new Map<EkKind, ReturnType<typeof createImportBlob>>();

    beforeAll(async () => {
      const values = await pcrRead(client, selection);
      policy = new PolicyDigest(TPM_ALG_ID.TPM_ALG_SHA256).pcr(selection, values.values).digest;
      pcr0 = values.values[0]!.toString('hex');
      await withTpmScope(client, async (s) => {
        for (const kind of EK_KINDS) {
          blobs.set(kind, createImportBlob((await getEndorsementKey(s, kind)).public, data, { authPolicy: policy }));
        }
      });
    });

    const unseal = (kind: EkKind, label?: string) =>
      inScope(async (s) => {
        const ek = await getEndorsementKey(s, kind);
        const blob = blobs.get(kind)!;
        const run = () => unsealImportedBlob(s, ek, blob, selection);
        const data = await (label === undefined ? run() : counted(label, run));
        if (label !== undefined) {
          await expectHeld([ek.handle]);
        }
        return data;
      });

    it.each(EK_KINDS)('%s EK: a blob sealed by createImportBlob to the current sha256:0,7 unseals to exactly the data', async (kind) => {
      expect((await unseal(kind, `unsealImportedBlob (${kind})`)).toString('hex')).toBe(data.toString('hex'));
    });

    it('one policy session serves Import and Load; the sealed object is flushed', () => {
      expect(counts.get('unsealImportedBlob (rsa-2048)')).toEqual([
        'StartAuthSession', 'PolicySecret', 'Import', 'PolicySecret', 'Load', 'StartAuthSession', 'PolicyPCR', 'Unseal', 'FlushContext',
      ]);
      // The password EK: one salted HMAC session serves Import and Load.
      expect(counts.get('unsealImportedBlob (ecc-p384)')).toEqual(['StartAuthSession', 'Import', 'Load', 'StartAuthSession', 'PolicyPCR', 'Unseal', 'FlushContext']);
    });

    it('after PCR 7 is extended every EK refuses: TPM_RC_POLICY_FAIL (0x99d) on session 1; after a reboot into other values too', async () => {
      await tools(() => tpm.extendPcr(7, 'sha256', randomBytes(32).toString('hex')));
      for (const kind of EK_KINDS) {
        expectTpmError(await failingInScope(() => unseal(kind)), 'TPM_RC_POLICY_FAIL', { kind: 'session', index: 1 }, 0x99d);
      }
      // Reboot: PCRs reset; PCR 0 then measures something else.
      await tools(() => tpm.reboot());
      await tools(() => tpm.extendPcr(0, 'sha256', randomBytes(32).toString('hex')));
      expectTpmError(await failingInScope(() => unseal('rsa-2048')), 'TPM_RC_POLICY_FAIL', { kind: 'session', index: 1 }, 0x99d);
    });

    it('control: rebooted and re-measured into the sealed values (PCR 0 as before, PCR 7 reset) it unseals again', async () => {
      await tools(() => tpm.reboot());
      await tools(() => tpm.extendPcr(0, 'sha256', pcr0Measurement));
      expect((await pcrRead(client, selection)).values[0]!.toString('hex')).toBe(pcr0);
      expect((await unseal('ecc-p256')).equals(data)).toBe(true);
    });
  });

  describe('policy sessions: trial digests and PolicyAuthorize end to end', () => {
    const selection = parsePcrSelection(SELECTION);

    it('a trial session accumulates PolicyPCR, PolicyAuthorize (NULL ticket) and PolicyOR exactly as PolicyDigest computes them', async () => {
      const values = (await pcrRead(client, selection)).values;
      const keyName = Buffer.concat([Buffer.from('000b', 'hex'), randomBytes(32)]);
      const policyRef = Buffer.from('rackseal-group');
      await inScope(async (s) => {
        const trial = s.track((await tpm2StartAuthSession(client, TPM_SE.TPM_SE_TRIAL)).sessionHandle);
        // A trial session takes the expected pcrDigest as given (a policy session checks it against the PCRs).
        await tpm2PolicyPCR(client, trial, selection, pcrDigest(TPM_ALG_ID.TPM_ALG_SHA256, selection, values));
        const pcrPolicy = new PolicyDigest(TPM_ALG_ID.TPM_ALG_SHA256).pcr(selection, values).digest;
        expect((await tpm2PolicyGetDigest(client, trial)).toString('hex')).toBe(pcrPolicy.toString('hex'));
        await tpm2PolicyAuthorize(client, trial, { approvedPolicy: pcrPolicy, policyRef, keySign: keyName, checkTicket: nullTicket(TPM_ST_TICKET.TPM_ST_VERIFIED) });
        const authorized = new PolicyDigest(TPM_ALG_ID.TPM_ALG_SHA256).authorize(keyName, policyRef).digest;
        expect((await tpm2PolicyGetDigest(client, trial)).toString('hex')).toBe(authorized.toString('hex'));
        const other = randomBytes(32);
        await tpm2PolicyOR(client, trial, [authorized, other]);
        expect((await tpm2PolicyGetDigest(client, trial)).equals(policyOr(TPM_ALG_ID.TPM_ALG_SHA256, [authorized, other]))).toBe(true);
      });
    });

    it('a blob sealed to PolicyAuthorize(server key) unseals with a signed PCR policy via LoadExternal + VerifySignature; a bad signature is TPM_RC_SIGNATURE', async () => {
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const signerPublic = tpmtPublicFromKey(publicKey, {
        type: TPM_ALG_ID.TPM_ALG_RSA,
        nameAlg: TPM_ALG_ID.TPM_ALG_SHA256,
        objectAttributes: 0x00040000 /* sign */ | 0x00000040 /* userWithAuth */,
        authPolicy: Buffer.alloc(0),
        parameters: { symmetric: { algorithm: TPM_ALG_ID.TPM_ALG_NULL }, scheme: { scheme: TPM_ALG_ID.TPM_ALG_RSASSA, hashAlg: TPM_ALG_ID.TPM_ALG_SHA256 }, keyBits: 2048, exponent: 0 },
        unique: Buffer.alloc(0),
      });
      const policyRef = Buffer.from('group-a');
      const data = randomBytes(32);
      const values = (await pcrRead(client, selection)).values;
      const approvedPolicy = new PolicyDigest(TPM_ALG_ID.TPM_ALG_SHA256).pcr(selection, values).digest;
      const aHash = createHash('sha256').update(approvedPolicy).update(policyRef).digest();
      const signature = (sig: Buffer) => ({ sigAlg: TPM_ALG_ID.TPM_ALG_RSASSA, signature: { hash: TPM_ALG_ID.TPM_ALG_SHA256, sig } }) as const;
      const good = signature(sign('sha256', Buffer.concat([approvedPolicy, policyRef]), privateKey));

      const unsealed = await inScope(async (s) => {
        const ek = await getEndorsementKey(s, 'rsa-2048');
        const signer = await tpm2LoadExternal(client, signerPublic, TPM_RH.TPM_RH_OWNER);
        s.track(signer.objectHandle);
        expect(signer.name.equals(objectName(signerPublic))).toBe(true);
        const checkTicket = await tpm2VerifySignature(client, signer.objectHandle, aHash, good);
        expect({ tag: checkTicket.tag, hierarchy: checkTicket.hierarchy }).toEqual({ tag: TPM_ST_TICKET.TPM_ST_VERIFIED, hierarchy: TPM_RH.TPM_RH_OWNER });
        expectTpmError(
          await tpm2VerifySignature(client, signer.objectHandle, randomBytes(32), good).catch((e: unknown) => e),
          'TPM_RC_SIGNATURE', { kind: 'parameter', index: 2 }, 0x2db,
        );
        const blob = createImportBlob(ek.public, data, { authPolicy: new PolicyDigest(TPM_ALG_ID.TPM_ALG_SHA256).authorize(signer.name, policyRef).digest });
        return unsealImportedBlob(s, ek, blob, selection, { authorize: { approvedPolicy, policyRef, keySign: signer.name, checkTicket } });
      });
      expect(unsealed.equals(data)).toBe(true);
    });
  });

  describe('getStoragePrimary', () => {
    /** tpm2_createprimary with the Provisioning Guidance attributes and `unique` from stdin, read back. */
    async function toolsSrk(algorithm: string, unique: Buffer, file: string): Promise<Buffer> {
      return tools(async () => {
        try {
          await runTool('tpm2_createprimary', [
            '-C', 'o', '-g', 'sha256', '-G', algorithm,
            '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt',
            '-u', '-', '-c', at(`${file}.ctx`),
          ], { env: { TPM2TOOLS_TCTI: tpm.tcti }, input: unique });
          await tpm2(tpm, 'readpublic', '-c', at(`${file}.ctx`), '-o', at(`${file}.pub`));
        } finally {
          await tpm2(tpm, 'flushcontext', '-t');
        }
        return readFile(at(`${file}.pub`));
      });
    }

    it('derives the P-256 SRK by default (one CreatePrimary, flushed with the scope); tpm2_createprimary with that template agrees byte for byte', async () => {
      const srk = await inScope(async (s) => {
        const primary = await counted('getStoragePrimary (none persisted)', () => getStoragePrimary(s));
        expect(primary.descriptor.template).toBe(SRK_TEMPLATE_ECC);
        return primary;
      });
      expect(counts.get('getStoragePrimary (none persisted)')).toEqual(['ReadPublic', 'CreatePrimary']);
      expect({ source: srk.source, type: srk.public.type }).toEqual({ source: 'created', type: TPM_ALG_ID.TPM_ALG_ECC });
      const theirs = await toolsSrk('ecc256:null:aes128cfb', Buffer.alloc(64), 'srk-ecc');
      expect(tpm2bOf(srk.public).toString('hex')).toBe(theirs.toString('hex'));
      expect(srk.name.equals(objectName(unmarshalTpm2bPublic(theirs)))).toBe(true);
    });

    it('an RSA SRK persisted at 0x81000001 (as other tools leave it) is used by default, ignored when the caller asks for the P-256 template', async () => {
      await inScope(async (s) => persistStoragePrimary(s, await getStoragePrimary(s, { persistentHandle: null, template: SRK_TEMPLATE_RSA })));
      try {
        const theirs = await toolsSrk('rsa2048:null:aes128cfb', Buffer.alloc(256), 'srk-rsa');
        const found = await inScope((s) => getStoragePrimary(s));
        expect({ source: found.source, handle: found.handle, template: found.descriptor.template }).toEqual({
          source: 'persistent',
          handle: SRK_PERSISTENT_HANDLE,
          template: SRK_TEMPLATE_RSA,
        });
        expect(tpm2bOf(found.public).toString('hex')).toBe(theirs.toString('hex'));
        const derived = await inScope((s) => getStoragePrimary(s, { template: SRK_TEMPLATE_ECC }));
        expect({ source: derived.source, type: derived.public.type }).toEqual({ source: 'created', type: TPM_ALG_ID.TPM_ALG_ECC });
      } finally {
        await tpm2EvictControl(client, TPM_RH.TPM_RH_OWNER, passwordAuth(), SRK_PERSISTENT_HANDLE, SRK_PERSISTENT_HANDLE).catch(() => undefined);
      }
    });
  });

  describe('key blobs', () => {
    const label = Buffer.from('k\0');

    async function decryptsWith(s: TpmScope, blobBytes: Buffer): Promise<void> {
      const blob = unmarshalKeyBlob(blobBytes);
      const key = await loadKeyBlob(s, blob);
      const message = randomBytes(32);
      const cipherText = publicEncrypt({ key: publicKeyFromTpmt(blob.public), padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: label }, message);
      // The session is salted to the blob's parent, found by the Name the blob records.
      expect((await rsaOaepDecrypt(s, key, cipherText, label, { parent: blob.parent })).equals(message)).toBe(true);
    }

    it('the decrypt key, kept as bytes, loads after everything is flushed and the TPM rebooted (SRK re-derived); the AK reloads under the EK', async () => {
      const { keyBytes, akBytes, akName } = await inScope(async (s) => {
        const ek = await getEndorsementKey(s, 'rsa-2048');
        const ak = await createAttestationKey(s, ek);
        const key = await createCertifiedDecryptKey(s, ak, randomBytes(16));
        const bytes = marshalKeyBlob(key.blob);
        expect(marshalKeyBlob(unmarshalKeyBlob(bytes)).equals(bytes)).toBe(true);
        return { keyBytes: bytes, akBytes: marshalKeyBlob(ak.blob), akName: ak.name };
      });
      // A scope of its own: swtpm has 3 object slots and TPM2_Create needs a free one.
      const made = await inScope(async (s) => createAttestationKey(s, await getEndorsementKey(s, 'ecc-p256')));
      const [p256AkBytes, p256AkName] = [marshalKeyBlob(made.blob), made.name];
      await tools(() => tpm.reboot());
      await inScope((s) => counted('loadKeyBlob (SRK re-derived) + rsaOaepDecrypt', () => decryptsWith(s, keyBytes)));
      expect(counts.get('loadKeyBlob (SRK re-derived) + rsaOaepDecrypt')).toEqual([
        'CreatePrimary', 'Load', 'FlushContext', 'CreatePrimary', 'StartAuthSession', 'RSA_Decrypt', 'FlushContext',
      ]);
      const ak = await inScope(async (s) => counted('loadKeyBlob (AK under the persisted RSA EK)', () => loadKeyBlob(s, unmarshalKeyBlob(akBytes))));
      expect(ak.name.equals(akName)).toBe(true);
      expect(counts.get('loadKeyBlob (AK under the persisted RSA EK)')).toEqual(['ReadPublic', 'StartAuthSession', 'PolicySecret', 'Load']);
      // Under the P-256 EK, which is not persisted: re-derived from the L-2 template, then flushed.
      const p256Ak = await inScope(async (s) => counted('loadKeyBlob (AK under the derived P-256 EK)', () => loadKeyBlob(s, unmarshalKeyBlob(p256AkBytes))));
      expect(p256Ak.name.equals(p256AkName)).toBe(true);
      expect(counts.get('loadKeyBlob (AK under the derived P-256 EK)')).toEqual(['CreatePrimary', 'StartAuthSession', 'PolicySecret', 'Load', 'FlushContext']);
    });

    it('with the SRK persisted at 0x81000001 no key is derived on load; once evicted the SRK is derived again and the key still loads', async () => {
      await inScope(async (s) => {
        const primary = await getStoragePrimary(s, { persistentHandle: null });
        await persistStoragePrimary(s, primary);
      });
      try {
        const keyBytes = await inScope(async (s) => {
          const ek = await getEndorsementKey(s, 'rsa-2048');
          const ak = await createAttestationKey(s, ek);
          const key = await counted('createCertifiedDecryptKey (SRK persisted)', () => createCertifiedDecryptKey(s, ak, randomBytes(16)));
          expect(key.blob.parent.persistentHandle).toBe(SRK_PERSISTENT_HANDLE);
          return marshalKeyBlob(key.blob);
        });
        expect(counts.get('createCertifiedDecryptKey (SRK persisted)')).toEqual(['ReadPublic', 'Create', 'Load', 'Certify']);
        await tools(() => tpm.reboot());
        await inScope((s) => counted('loadKeyBlob (SRK persisted) + rsaOaepDecrypt', () => decryptsWith(s, keyBytes)));
        expect(counts.get('loadKeyBlob (SRK persisted) + rsaOaepDecrypt')).toEqual(['ReadPublic', 'Load', 'ReadPublic', 'StartAuthSession', 'RSA_Decrypt']);
        await tpm2EvictControl(client, TPM_RH.TPM_RH_OWNER, passwordAuth(), SRK_PERSISTENT_HANDLE, SRK_PERSISTENT_HANDLE);
        await inScope((s) => counted('loadKeyBlob (persisted SRK gone) + rsaOaepDecrypt', () => decryptsWith(s, keyBytes)));
        expect(counts.get('loadKeyBlob (persisted SRK gone) + rsaOaepDecrypt')).toEqual([
          'ReadPublic', 'CreatePrimary', 'Load', 'FlushContext', 'ReadPublic', 'CreatePrimary', 'StartAuthSession', 'RSA_Decrypt', 'FlushContext',
        ]);
      } finally {
        await tpm2EvictControl(client, TPM_RH.TPM_RH_OWNER, passwordAuth(), SRK_PERSISTENT_HANDLE, SRK_PERSISTENT_HANDLE).catch(() => undefined);
      }
    });

    it('a blob whose parent is not this TPM\'s is KeyBlobParentError before any Load, nothing left loaded', async () => {
      const blobBytes = await inScope(async (s) => {
        const ek = await getEndorsementKey(s, 'rsa-2048');
        return marshalKeyBlob((await createCertifiedDecryptKey(s, await createAttestationKey(s, ek), randomBytes(16))).blob);
      });
      const blob = unmarshalKeyBlob(blobBytes);
      const foreign = { ...blob, parent: { ...blob.parent, name: Buffer.concat([blob.parent.name.subarray(0, 2), randomBytes(32)]) } };
      const error = await failingInScope((s) => loadKeyBlob(s, foreign));
      expect(error).toBeInstanceOf(KeyBlobParentError);
    });
  });

  describe('scopes', () => {
    it('work that throws midway still flushes the EK it derived and the AK it loaded', async () => {
      const error = await failingInScope(async (s) => {
        const ek = await getEndorsementKey(s, 'ecc-p256');
        await createAttestationKey(s, ek);
        throw new Error('agent crashed');
      });
      expect((error as Error).message).toBe('agent crashed');
    });

    it('a failed policy (sealed object, wrong PCRs) leaves no session even though the TPM keeps failed sessions', async () => {
      const selection = parsePcrSelection(SELECTION);
      const error = await failingInScope(async (s) => {
        const ek = await getEndorsementKey(s, 'rsa-2048');
        const blob = createImportBlob(ek.public, randomBytes(8), { authPolicy: randomBytes(32) });
        return unsealImportedBlob(s, ek, blob, selection);
      });
      expectTpmError(error, 'TPM_RC_POLICY_FAIL', { kind: 'session', index: 1 }, 0x99d);
    });

    it('FlushContext of an object or session already flushed is TPM_RC_HANDLE on parameter 1 (what TpmScope treats as gone)', async () => {
      await inScope(async (s) => {
        const ek = await getEndorsementKey(s, 'ecc-p256');
        const session = (await tpm2StartAuthSession(client, TPM_SE.TPM_SE_POLICY)).sessionHandle;
        await tpm2FlushContext(client, session);
        expectTpmError(await tpm2FlushContext(client, session).catch((e: unknown) => e), 'TPM_RC_HANDLE', { kind: 'parameter', index: 1 }, 0x1cb);
        await s.flush(ek.handle);
        expectTpmError(await tpm2FlushContext(client, ek.handle).catch((e: unknown) => e), 'TPM_RC_HANDLE', { kind: 'parameter', index: 1 }, 0x1cb);
      });
    });
  });
});
