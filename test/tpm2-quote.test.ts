/**
 * Quote verification (libs/tpm2 verifyQuote, `rackseal quote verify`) against real quotes: made by
 * tpm2_quote on swtpm with RSASSA, RSAPSS and ECDSA AKs created under the EK, cross-checked with
 * tpm2_checkquote (and openssl for RSAPSS, which tpm2_checkquote 5.4 cannot verify:
 * tpm2-software/tpm2-tools#3283), and the real GCP Shielded VM quote in test/fixtures.
 * Every refusal is asserted by its exact reason, in the library and on the CLI's stderr.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  objectName,
  parsePcrSelection,
  type ParsedPublic,
  splitPcrValues,
  TPM_ALG_ID,
  TPM_ST,
  unmarshalTpm2bPublic,
  unmarshalTpmsAttest,
  unmarshalTpmtPublic,
  verifyAttestation,
  verifyQuote,
  type QuoteInput,
} from '@rackseal/tpm2';
import { fixturePath } from './support/fixtures';
import { LocalCa } from './support/local-ca';
import { runRacksealCli } from './support/cli-runner';
import { startSwtpm, type SwtpmMachine } from './support/swtpm';
import { runTool, tpm2, ToolFailed } from './support/tpm2-tools';

jest.setTimeout(60_000);

const EK_HANDLE = '0x81010001';
const GCP_FIXTURE = fixturePath('eventlogs', 'windows_gcp_shielded_vm.json');

type AkKind = 'rsassa' | 'rsapss' | 'ecdsa' | 'other';

interface Ak {
  readonly kind: AkKind;
  readonly ctx: string;
  /** TPM2B_PUBLIC as tpm2_createak -u writes it. */
  readonly pubPath: string;
  readonly pemPath: string;
  readonly pub: ParsedPublic;
}

/** The files tpm2_quote wrote and what it was asked for. */
interface Quote {
  readonly ak: Ak;
  readonly selection: string;
  readonly nonce: string;
  readonly msg: string;
  readonly sig: string;
  readonly pcrs: string;
}

interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

function cli(...args: string[]): CliRun {
  return runRacksealCli(args);
}

function cliVerify(q: Quote, overrides: { ak?: string; msg?: string; sig?: string; pcrs?: string; selection?: string; nonce?: string } = {}, ...extra: string[]): CliRun {
  return cli(
    'quote', 'verify',
    '--ak', overrides.ak ?? q.ak.pubPath,
    '--msg', overrides.msg ?? q.msg,
    '--sig', overrides.sig ?? q.sig,
    '--pcrs', overrides.pcrs ?? q.pcrs,
    '--selection', overrides.selection ?? q.selection,
    '--nonce', overrides.nonce ?? q.nonce,
    ...extra,
  );
}

describe('quote verification against tpm2_quote on swtpm', () => {
  let ca: LocalCa | undefined;
  let tpm: SwtpmMachine | undefined;
  let work: string;
  const aks = new Map<AkKind, Ak>();
  let counter = 0;

  const machine = (): SwtpmMachine => {
    if (tpm === undefined) {
      throw new Error('swtpm not started');
    }
    return tpm;
  };
  const ak = (kind: AkKind): Ak => aks.get(kind) ?? (() => {
    throw new Error(`no ${kind} AK`);
  })();

  async function createAk(kind: AkKind): Promise<Ak> {
    const [alg, scheme] = kind === 'ecdsa' ? ['ecc', 'ecdsa'] : kind === 'rsapss' ? ['rsa', 'rsapss'] : ['rsa', 'rsassa'];
    const base = join(work, `ak-${kind}`);
    try {
      await tpm2(machine(), 'createak', '-C', EK_HANDLE, '-c', `${base}.ctx`, '-G', alg, '-g', 'sha256', '-s', scheme, '-u', `${base}.pub`, '-n', `${base}.name`);
    } finally {
      // swtpm has no resource manager: whatever createak left loaded must go.
      await tpm2(machine(), 'flushcontext', '-t');
    }
    const { stdout } = await tpm2(machine(), 'print', '-t', 'TPM2B_PUBLIC', '-f', 'pem', `${base}.pub`);
    await writeFile(`${base}.pem`, stdout);
    return { kind, ctx: `${base}.ctx`, pubPath: `${base}.pub`, pemPath: `${base}.pem`, pub: unmarshalTpm2bPublic(await readFile(`${base}.pub`)) };
  }

  async function quote(by: Ak, selection: string, nonce: string): Promise<Quote> {
    counter += 1;
    const base = join(work, `q${counter}`);
    const files = { msg: `${base}.msg`, sig: `${base}.sig`, pcrs: `${base}.pcrs` };
    const args = ['-c', by.ctx, '-l', selection, '-m', files.msg, '-s', files.sig, '-o', files.pcrs, '-F', 'values', '-g', 'sha256'];
    if (nonce !== '') {
      args.push('-q', nonce);
    }
    if (by.kind === 'rsapss') {
      // tpm2_quote 5.4 asks for RSASSA unless told otherwise, which a PSS AK refuses (TPM_RC_SCHEME).
      args.push('--scheme', 'rsapss');
    }
    try {
      await tpm2(machine(), 'quote', ...args);
    } finally {
      await tpm2(machine(), 'flushcontext', '-t');
    }
    return { ak: by, selection, nonce, ...files };
  }

  async function libraryInput(q: Quote): Promise<QuoteInput> {
    const selection = parsePcrSelection(q.selection);
    return {
      akPublic: q.ak.pub,
      attest: await readFile(q.msg),
      signature: await readFile(q.sig),
      nonce: Buffer.from(q.nonce, 'hex'),
      selection,
      pcrValues: splitPcrValues(selection, await readFile(q.pcrs))!,
    };
  }

  /** tpm2_checkquote's verdict on a quote (it needs no TPM). */
  async function checkquote(q: Quote, overrides: { msg?: string; pcrs?: string; nonce?: string; ak?: string } = {}): Promise<boolean> {
    const nonce = overrides.nonce ?? q.nonce;
    const args = ['-u', overrides.ak ?? q.ak.pubPath, '-m', overrides.msg ?? q.msg, '-s', q.sig, '-f', overrides.pcrs ?? q.pcrs, '-l', q.selection, '-g', 'sha256'];
    if (nonce !== '') {
      args.push('-q', nonce);
    }
    try {
      await runTool('tpm2_checkquote', args);
      return true;
    } catch (error) {
      if (error instanceof ToolFailed && error.exitCode === 1) {
        return false;
      }
      throw error;
    }
  }

  async function tampered(path: string, offset: number, name: string): Promise<string> {
    const bytes = await readFile(path);
    bytes[offset < 0 ? bytes.length + offset : offset]! ^= 0x01;
    const out = join(work, name);
    await writeFile(out, bytes);
    return out;
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rackseal-quote-'));
    ca = await LocalCa.create();
    tpm = await startSwtpm({ ca, pcrBanks: ['sha1', 'sha256'] });
    // Non-zero PCRs, so a digest over the wrong PCRs cannot match by accident.
    await tpm.extendPcr(7, 'sha256', createHash('sha256').update('secure boot state').digest('hex'));
    await tpm.extendPcr(0, 'sha1', createHash('sha1').update('firmware').digest('hex'));
    for (const kind of ['rsassa', 'rsapss', 'ecdsa', 'other'] as const) {
      aks.set(kind, await createAk(kind));
    }
  }, 120_000);

  afterAll(async () => {
    await tpm?.stop();
    await ca?.remove();
    if (work !== undefined) {
      await rm(work, { recursive: true, force: true });
    }
  });

  it.each(['rsassa', 'rsapss', 'ecdsa'] as const)('a quote by the %s AK over sha256:0,7 verifies in the library and the CLI', async (kind) => {
    const q = await quote(ak(kind), 'sha256:0,7', 'a1b2c3d4e5f60718');
    const result = verifyQuote(await libraryInput(q));
    expect(result).toMatchObject({ ok: true, akAttributesChecked: true });
    expect(result.ok && result.pcrs.map((p) => [p.bank, p.index, p.value.toString('hex')])).toEqual([
      ['sha256', 0, await machine().readPcr(0, 'sha256')],
      ['sha256', 7, await machine().readPcr(7, 'sha256')],
    ]);
    // The qualifiedSigner is the AK's QN under the EK: nameAlg ‖ H(QN(EK) ‖ Name(AK)).
    expect(result.ok && result.attest.qualifiedSigner.subarray(0, 2).toString('hex')).toBe('000b');
    expect(objectName(ak(kind).pub).equals(await readFile(ak(kind).pubPath.replace(/\.pub$/, '.name')))).toBe(true);

    const run = cliVerify(q);
    expect(run).toMatchObject({ status: 0, stderr: '' });
    expect(run.stdout).toMatch(new RegExp(`^quote valid: sha256:0,7, ${kind}-sha256, nonce a1b2c3d4e5f60718\n`));

    // The independent verdict. tpm2_checkquote 5.4 cannot verify RSAPSS quotes (tpm2-tools#3283),
    // so that one is checked with openssl: PSS, SHA-256, salt = hash length as the TPM made it.
    if (kind === 'rsapss') {
      const rawSig = join(work, 'pss.raw');
      await writeFile(rawSig, (await readFile(q.sig)).subarray(6));
      const { stdout } = await runTool('openssl', [
        'dgst', '-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32',
        '-verify', q.ak.pemPath, '-signature', rawSig, q.msg,
      ]);
      expect(stdout.toString()).toBe('Verified OK\n');
    } else {
      expect(await checkquote(q)).toBe(true);
    }
  });

  it('a two-bank quote (sha1 then sha256) verifies: banks in list order, digest with the scheme hash', async () => {
    const q = await quote(ak('rsassa'), 'sha1:0,7+sha256:0,7,10', '00');
    const input = await libraryInput(q);
    expect(input.pcrValues.map((v) => v.length)).toEqual([20, 20, 32, 32, 32]);
    const result = verifyQuote(input);
    expect(result).toMatchObject({ ok: true });
    expect(result.ok && result.pcrs[0]!.value.toString('hex')).toBe(await machine().readPcr(0, 'sha1'));
    expect(cliVerify(q, {}, '--json')).toMatchObject({ status: 0 });
    expect(JSON.parse(cliVerify(q, {}, '--json').stdout)).toMatchObject({
      valid: true,
      akAttributesChecked: true,
      signature: 'rsassa-sha256',
      selection: 'sha1:0,7+sha256:0,7,10',
      pcrs: { sha1: { '0': await machine().readPcr(0, 'sha1') }, sha256: { '7': await machine().readPcr(7, 'sha256') } },
    });
    expect(await checkquote(q)).toBe(true);
  });

  it('an empty nonce (no -q) verifies with --nonce \'\'', async () => {
    const q = await quote(ak('ecdsa'), 'sha256:0', '');
    expect(verifyQuote(await libraryInput(q))).toMatchObject({ ok: true });
    const run = cliVerify(q, { nonce: '' });
    expect(run).toMatchObject({ status: 0, stderr: '' });
    expect(run.stdout).toContain('nonce (empty)');
    expect(cliVerify(q, { nonce: '00' })).toMatchObject({ status: 1 });
  });

  it('a PEM AK verifies signature, nonce and PCRs, and says its attributes were not checked', async () => {
    const q = await quote(ak('rsassa'), 'sha256:0,7', 'feed');
    const run = cliVerify(q, { ak: q.ak.pemPath });
    expect(run.status).toBe(0);
    expect(run.stderr).toBe(
      'rackseal: warning: --ak is a bare public key (PEM): its TPM object attributes and signing scheme cannot be checked; ' +
        'only the signature, nonce and PCR digest are verified\n',
    );
    expect(run.stdout).toContain('signer: PEM public key (AK attributes not checked)');
    expect(cliVerify(q, { ak: ak('other').pemPath })).toMatchObject({ status: 1 });
  });

  describe('refusals', () => {
    let q: Quote;
    let input: QuoteInput;

    beforeAll(async () => {
      q = await quote(ak('rsassa'), 'sha256:0,7', '0123456789abcdef');
      input = await libraryInput(q);
    });

    it('a changed nonce: nonce-mismatch (tpm2_checkquote agrees it is invalid)', async () => {
      expect(verifyQuote({ ...input, nonce: Buffer.from('0123456789abcdee', 'hex') })).toMatchObject({ ok: false, reason: 'nonce-mismatch' });
      expect(verifyQuote({ ...input, nonce: Buffer.alloc(0) })).toMatchObject({ ok: false, reason: 'nonce-mismatch' });
      const run = cliVerify(q, { nonce: '0123456789abcdee' });
      expect(run).toMatchObject({ status: 1, stdout: '' });
      expect(run.stderr).toBe(
        'rackseal: quote refused (nonce-mismatch): extraData is 0123456789abcdef, the expected nonce is 0123456789abcdee\n',
      );
      expect(await checkquote(q, { nonce: '0123456789abcdee' })).toBe(false);
    });

    it('a changed PCR value, and the values read before a real extend: pcr-digest-mismatch', async () => {
      const pcrs = await tampered(q.pcrs, -1, 'changed.pcrs');
      expect(cliVerify(q, { pcrs }).stderr).toMatch(/^rackseal: quote refused \(pcr-digest-mismatch\): /);
      expect(await checkquote(q, { pcrs })).toBe(false);

      // A real change: extend PCR 7, quote again, offer the old values with the new quote.
      await machine().extendPcr(7, 'sha256', createHash('sha256').update('new bootloader').digest('hex'));
      const after = await quote(ak('rsassa'), 'sha256:0,7', '0123456789abcdef');
      const stale = verifyQuote({ ...(await libraryInput(after)), pcrValues: input.pcrValues });
      expect(stale).toMatchObject({ ok: false, reason: 'pcr-digest-mismatch' });
      expect(cliVerify(after, { pcrs: q.pcrs })).toMatchObject({ status: 1 });
      expect(verifyQuote(await libraryInput(after))).toMatchObject({ ok: true });
    });

    it('a flipped attest byte: signature-invalid (exit 1; exit 2 only when the file no longer parses)', async () => {
      const attest = input.attest as Buffer;
      for (const offset of [1, 10, 50, attest.length - 1]) {
        const flipped = Buffer.from(attest);
        flipped[offset]! ^= 0x01;
        expect(verifyQuote({ ...input, attest: flipped })).toMatchObject({ ok: false, reason: 'signature-invalid' });
      }
      const msg = await tampered(q.msg, -1, 'flipped.msg');
      expect(cliVerify(q, { msg }).stderr).toMatch(/^rackseal: quote refused \(signature-invalid\): /);
      expect(await checkquote(q, { msg })).toBe(false);
      const truncated = join(work, 'truncated.msg');
      await writeFile(truncated, attest.subarray(0, attest.length - 1));
      const run = cliVerify(q, { msg: truncated });
      expect(run.status).toBe(2);
      expect(run.stderr).toContain('is not a TPMS_ATTEST: TPMS_QUOTE_INFO.pcrDigest at offset');
    });

    it('another AK: signature-invalid (same scheme) or scheme-mismatch (another scheme)', async () => {
      expect(verifyQuote({ ...input, akPublic: ak('other').pub })).toMatchObject({ ok: false, reason: 'signature-invalid' });
      expect(verifyQuote({ ...input, akPublic: ak('rsapss').pub })).toMatchObject({ ok: false, reason: 'scheme-mismatch' });
      expect(verifyQuote({ ...input, akPublic: ak('ecdsa').pub })).toMatchObject({ ok: false, reason: 'scheme-mismatch' });
      expect(cliVerify(q, { ak: ak('other').pubPath }).stderr).toMatch(/^rackseal: quote refused \(signature-invalid\): /);
      expect(await checkquote(q, { ak: ak('other').pubPath })).toBe(false);
    });

    it('a key that is not a restricted, TPM-bound signing key: ak-attributes', async () => {
      const ekPath = join(work, 'ek.pub');
      await tpm2(machine(), 'readpublic', '-c', EK_HANDLE, '-o', ekPath);
      expect(cliVerify(q, { ak: ekPath }).stderr).toBe('rackseal: quote refused (ak-attributes): AK must have sign set\n');
      // The genuine AK's public area with restricted cleared: the TPM would let such a key sign anything.
      const unrestricted = await readFile(q.ak.pubPath);
      unrestricted.writeUInt32BE(q.ak.pub.objectAttributes & ~0x00010000, 6);
      const path = join(work, 'unrestricted.pub');
      await writeFile(path, unrestricted);
      expect(cliVerify(q, { ak: path })).toMatchObject({ status: 1, stderr: 'rackseal: quote refused (ak-attributes): AK must have restricted set\n' });
    });

    it('a selection other than the one quoted: selection-mismatch', () => {
      const other = parsePcrSelection('sha256:0,8');
      expect(verifyQuote({ ...input, selection: other })).toEqual({
        ok: false,
        reason: 'selection-mismatch',
        message: 'quote covers sha256:0,7, expected sha256:0,8',
      });
      expect(verifyQuote({ ...input, selection: parsePcrSelection('sha1:0,7') })).toMatchObject({ ok: false, reason: 'selection-mismatch' });
      expect(cliVerify(q, { selection: 'sha256:0,8' }).stderr).toBe(
        'rackseal: quote refused (selection-mismatch): quote covers sha256:0,7, expected sha256:0,8\n',
      );
      // A selection the PCR file cannot even fit is a usage error, not a verdict.
      expect(cliVerify(q, { selection: 'sha256:0' })).toMatchObject({
        status: 2,
        stderr: `rackseal: --pcrs ${JSON.stringify(q.pcrs)} holds 64 bytes; sha256:0 needs 32\n`,
      });
    });

    it('a signature relabelled with another scheme or hash: scheme-mismatch', async () => {
      const sig = await readFile(q.sig);
      const asPss = Buffer.from(sig);
      asPss.writeUInt16BE(TPM_ALG_ID.TPM_ALG_RSAPSS, 0);
      expect(verifyQuote({ ...input, signature: asPss })).toMatchObject({ ok: false, reason: 'scheme-mismatch' });
      const asSha1 = Buffer.from(sig);
      asSha1.writeUInt16BE(TPM_ALG_ID.TPM_ALG_SHA1, 2);
      expect(verifyQuote({ ...input, signature: asSha1 })).toMatchObject({ ok: false, reason: 'scheme-mismatch' });
      const pssPath = join(work, 'relabelled.sig');
      await writeFile(pssPath, asPss);
      expect(cliVerify(q, { sig: pssPath }).stderr).toBe(
        'rackseal: quote refused (scheme-mismatch): signature is TPM_ALG_RSAPSS/TPM_ALG_SHA256 but the key\'s scheme is TPM_ALG_RSASSA/TPM_ALG_SHA256\n',
      );
      // Without the AK's public area (PEM) the scheme cannot be checked: the PSS check itself fails.
      expect(cliVerify(q, { sig: pssPath, ak: q.ak.pemPath })).toMatchObject({ status: 1 });
      expect(cliVerify(q, { sig: pssPath, ak: q.ak.pemPath }).stderr).toContain('quote refused (signature-invalid)');
    });

    it('a certify attestation offered as a quote: wrong-type', async () => {
      const keyBase = join(work, 'certified');
      const primary = join(work, 'primary.ctx');
      try {
        await tpm2(machine(), 'createprimary', '-C', 'o', '-g', 'sha256', '-G', 'ecc', '-c', primary);
        await tpm2(machine(), 'create', '-C', primary, '-G', 'ecc', '-u', `${keyBase}.pub`, '-r', `${keyBase}.priv`, '-c', `${keyBase}.ctx`);
        await tpm2(machine(), 'flushcontext', '-t');
        await tpm2(machine(), 'certify', '-c', `${keyBase}.ctx`, '-C', ak('rsassa').ctx, '-g', 'sha256', '-o', `${keyBase}.attest`, '-s', `${keyBase}.sig`);
      } finally {
        await tpm2(machine(), 'flushcontext', '-t');
      }
      const certify = { attest: await readFile(`${keyBase}.attest`), signature: await readFile(`${keyBase}.sig`) };
      // tpm2_certify 5.4 always sends qualifyingData 00ff55aa.
      expect(verifyQuote({ ...input, ...certify, nonce: Buffer.from('00ff55aa', 'hex') })).toMatchObject({ ok: false, reason: 'wrong-type' });
      const run = cliVerify(q, { msg: `${keyBase}.attest`, sig: `${keyBase}.sig`, nonce: '00ff55aa' });
      expect(run.stderr).toBe('rackseal: quote refused (wrong-type): attestation is TPM_ST_ATTEST_CERTIFY, expected TPM_ST_ATTEST_QUOTE\n');
    });

    it('unreadable or malformed inputs exit 2', () => {
      expect(cliVerify(q, { ak: join(work, 'missing.pub') })).toMatchObject({ status: 2 });
      expect(cliVerify(q, { ak: q.msg }).stderr).toMatch(/^rackseal: --ak .* is not a TPM2B_PUBLIC \(TPM2B_PUBLIC\.publicArea at offset 2: .*\), nor a TPMT_PUBLIC, PEM\/DER public key or certificate\n$/);
      expect(cliVerify(q, { sig: q.msg }).stderr).toMatch(/^rackseal: --sig .* is not a TPMT_SIGNATURE: TPMT_SIGNATURE.sigAlg at offset 0: /);
      expect(cliVerify(q, { nonce: 'xyz' })).toMatchObject({ status: 2, stderr: 'rackseal: --nonce must be an even number of hex digits\n' });
      expect(cliVerify(q, { selection: 'sha256:zero' })).toMatchObject({ status: 2 });
    });
  });
});

describe('the real GCP Shielded VM quote (test/fixtures/eventlogs/windows_gcp_shielded_vm.json)', () => {
  /** go-attestation's serialized PlatformParameters: base64 TPM structures; DigestAlg 3 = Go's crypto.SHA1. */
  interface GcpFixture {
    AK: { Public: string; CreateData: string; CreateAttestation: string; CreateSignature: string };
    Quote: { Nonce: string; Alg: number; Quote: string; Signature: string };
    Log: { PCRs: { Index: number; Digest: string; DigestAlg: number }[] };
  }
  let gcp: GcpFixture;
  let input: QuoteInput;
  let work: string;

  beforeAll(async () => {
    gcp = JSON.parse(await readFile(GCP_FIXTURE, 'utf8')) as GcpFixture;
    const attest = unmarshalTpmsAttest(Buffer.from(gcp.Quote.Quote, 'base64'));
    if (attest.type !== TPM_ST.TPM_ST_ATTEST_QUOTE) {
      throw new Error('fixture quote is not a quote');
    }
    // The PCR values from the log's PCR list, ordered as the quote selected them.
    const byIndex = new Map(gcp.Log.PCRs.filter((p) => p.DigestAlg === 3).map((p) => [p.Index, Buffer.from(p.Digest, 'base64')]));
    const selection = attest.attested.pcrSelect;
    input = {
      akPublic: unmarshalTpmtPublic(Buffer.from(gcp.AK.Public, 'base64')),
      attest: Buffer.from(gcp.Quote.Quote, 'base64'),
      signature: Buffer.from(gcp.Quote.Signature, 'base64'),
      nonce: Buffer.from(gcp.Quote.Nonce, 'base64'),
      selection,
      pcrValues: selection.flatMap((bank) => bank.pcrs.map((i) => byIndex.get(i)!)),
    };
    work = await mkdtemp(join(tmpdir(), 'rackseal-gcp-'));
  });

  afterAll(async () => {
    if (work !== undefined) {
      await rm(work, { recursive: true, force: true });
    }
  });

  it('verifies with its AK: RSASSA-SHA1 over all 24 SHA-1 PCRs, empty nonce', () => {
    expect(gcp.Quote.Nonce).toBe('');
    const result = verifyQuote(input);
    expect(result).toMatchObject({ ok: true, akAttributesChecked: true });
    expect(result.ok && result.attest.attested.pcrSelect).toEqual([{ hash: TPM_ALG_ID.TPM_ALG_SHA1, pcrs: [...Array(24).keys()], sizeofSelect: 3 }]);
    expect(result.ok && result.signature.sigAlg).toBe(TPM_ALG_ID.TPM_ALG_RSASSA);
    expect(result.ok && result.pcrs.length).toBe(24);
  });

  it('is refused with one PCR changed, a nonce, or a SHA-256 selection', () => {
    const changed = input.pcrValues.map((v, i) => (i === 7 ? Buffer.alloc(20, 0xee) : v));
    expect(verifyQuote({ ...input, pcrValues: changed })).toMatchObject({ ok: false, reason: 'pcr-digest-mismatch' });
    expect(verifyQuote({ ...input, nonce: Buffer.from([0]) })).toMatchObject({ ok: false, reason: 'nonce-mismatch' });
    expect(verifyQuote({ ...input, selection: parsePcrSelection(`sha256:${[...Array(24).keys()].join(',')}`) })).toMatchObject({
      ok: false,
      reason: 'selection-mismatch',
    });
  });

  it('verifies through the CLI from files (AK as a bare TPMT_PUBLIC, as go-attestation stores it)', async () => {
    const files = {
      ak: join(work, 'ak.tpmt'),
      msg: join(work, 'q.msg'),
      sig: join(work, 'q.sig'),
      pcrs: join(work, 'q.pcrs'),
    };
    await writeFile(files.ak, Buffer.from(gcp.AK.Public, 'base64'));
    await writeFile(files.msg, input.attest);
    await writeFile(files.sig, input.signature as Buffer);
    await writeFile(files.pcrs, Buffer.concat(input.pcrValues));
    const selection = `sha1:${[...Array(24).keys()].join(',')}`;
    const args = ['quote', 'verify', '--ak', files.ak, '--msg', files.msg, '--sig', files.sig, '--pcrs', files.pcrs, '--selection', selection];
    const run = cli(...args, '--nonce', '');
    expect(run).toMatchObject({ status: 0, stderr: '' });
    expect(run.stdout).toMatch(/^quote valid: sha1:0,1,2,.*,23, rsassa-sha1, nonce \(empty\)\n/);
    expect(cli(...args, '--nonce', '00')).toMatchObject({ status: 1 });
  });

  it("its AK's creation attestation (TPM2_CertifyCreation) verifies and names the AK", () => {
    const akPublic = unmarshalTpmtPublic(Buffer.from(gcp.AK.Public, 'base64'));
    const creation = verifyAttestation(
      {
        akPublic,
        attest: Buffer.from(gcp.AK.CreateAttestation, 'base64'),
        signature: Buffer.from(gcp.AK.CreateSignature, 'base64'),
        nonce: Buffer.alloc(0),
      },
      TPM_ST.TPM_ST_ATTEST_CREATION,
    );
    expect(creation).toMatchObject({ ok: true });
    if (!creation.ok) {
      return;
    }
    expect(creation.attest.attested.objectName.equals(objectName(akPublic))).toBe(true);
    // creationHash = H_nameAlg(TPMS_CREATION_DATA), the CreateData go-attestation kept.
    const creationData = Buffer.from(gcp.AK.CreateData, 'base64');
    expect(creation.attest.attested.creationHash.equals(createHash('sha256').update(creationData).digest())).toBe(true);
  });
});
