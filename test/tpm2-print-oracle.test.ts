/**
 * Our TPMT_PUBLIC and TPMS_ATTEST parsers against tpm2-tools' own: tpm2_print (tpm2-tools 5.4) decodes
 * the same files, made by tpm2-tools on swtpm, and every field it prints must equal what we parsed.
 * We render our parse in tpm2_print's layout and compare whole documents, so a field that either side
 * drops or adds fails too. Then our re-marshalled bytes go back through tpm2_print (-t TPMT_PUBLIC,
 * TPMS_ATTEST) and must print the same. Known tpm2_print 5.4 quirks, handled explicitly:
 * firmwareVersion is hex-dumped in host (little-endian) byte order; only QUOTE attestations are
 * printed (it stops with "Cannot print unsupported type" after the header of any other type).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  describeObjectAttributes,
  hashAlgorithm,
  marshalPcrSelection,
  marshalTpmsAttest,
  marshalTpmtPublic,
  type ParsedAttest,
  type TPMT_PUBLIC,
  TPM_ALG_ID,
  TPM_ST,
  unmarshalTpm2bPublic,
  unmarshalTpmsAttest,
  unmarshalTpmtPublic,
} from '@rackseal/tpm2';
import yaml from 'js-yaml';
import { fixturePath } from './support/fixtures';
import { LocalCa } from './support/local-ca';
import { startSwtpm, type SwtpmMachine } from './support/swtpm';
import { runTool, tpm2, ToolFailed } from './support/tpm2-tools';

jest.setTimeout(60_000);

const GCP_FIXTURE = fixturePath('eventlogs', 'windows_gcp_shielded_vm.json');

type Yaml = string | { [key: string]: Yaml };

/** tpm2_print's YAML with every scalar a string (no 0x10 → 16, no 8018 → number); empty → ''. */
function parseYaml(text: string): Yaml {
  const normalise = (node: unknown): Yaml => {
    if (node === null || node === undefined) {
      return '';
    }
    if (typeof node === 'string') {
      return node;
    }
    return Object.fromEntries(Object.entries(node as Record<string, unknown>).map(([k, v]) => [k, normalise(v)]));
  };
  return normalise(yaml.load(text, { schema: yaml.FAILSAFE_SCHEMA }));
}

// tpm2-tools' names (tpm2_alg_util) for the algorithms these objects use; (null) for an absent one.
const TOOLS_ALG_NAMES: Readonly<Record<number, string>> = {
  [TPM_ALG_ID.TPM_ALG_RSA]: 'rsa',
  [TPM_ALG_ID.TPM_ALG_SHA1]: 'sha1',
  [TPM_ALG_ID.TPM_ALG_HMAC]: 'hmac',
  [TPM_ALG_ID.TPM_ALG_AES]: 'aes',
  [TPM_ALG_ID.TPM_ALG_KEYEDHASH]: 'keyedhash',
  [TPM_ALG_ID.TPM_ALG_SHA256]: 'sha256',
  [TPM_ALG_ID.TPM_ALG_SHA384]: 'sha384',
  [TPM_ALG_ID.TPM_ALG_NULL]: 'null',
  [TPM_ALG_ID.TPM_ALG_RSASSA]: 'rsassa',
  [TPM_ALG_ID.TPM_ALG_RSAPSS]: 'rsapss',
  [TPM_ALG_ID.TPM_ALG_ECDSA]: 'ecdsa',
  [TPM_ALG_ID.TPM_ALG_ECC]: 'ecc',
  [TPM_ALG_ID.TPM_ALG_SYMCIPHER]: 'symcipher',
  [TPM_ALG_ID.TPM_ALG_CFB]: 'cfb',
};
const TOOLS_CURVE_NAMES: Readonly<Record<number, string>> = { 0x0003: 'NIST p256', 0x0004: 'NIST p384' };

function alg(id: number | undefined): Yaml {
  if (id === undefined || id === 0) {
    return { value: '(null)', raw: '0x0' };
  }
  const value = TOOLS_ALG_NAMES[id];
  if (value === undefined) {
    throw new Error(`add tpm2-tools' name for algorithm 0x${id.toString(16)}`);
  }
  return { value, raw: `0x${id.toString(16)}` };
}

/** Our parse of a TPMT_PUBLIC, laid out as tpm2_print -t TPM2B_PUBLIC prints one (tpm2_util_public_to_yaml). */
function asToolsPrintsPublic(pub: TPMT_PUBLIC): Yaml {
  const out: Record<string, Yaml> = {
    'name-alg': alg(pub.nameAlg),
    attributes: {
      value: describeObjectAttributes(pub.objectAttributes).map((name) => name.toLowerCase()).join('|'),
      raw: `0x${pub.objectAttributes.toString(16)}`,
    },
    type: alg(pub.type),
  };
  const symmetric = (sym: { algorithm: number; keyBits?: number; mode?: number }): void => {
    out['sym-alg'] = alg(sym.algorithm);
    out['sym-mode'] = alg(sym.mode);
    out['sym-keybits'] = String(sym.keyBits ?? 0);
  };
  switch (pub.type) {
    case TPM_ALG_ID.TPM_ALG_RSA:
      out.exponent = String(pub.parameters.exponent === 0 ? 65537 : pub.parameters.exponent);
      out.bits = String(pub.parameters.keyBits);
      out.scheme = alg(pub.parameters.scheme.scheme);
      out['scheme-halg'] = alg(pub.parameters.scheme.hashAlg);
      symmetric(pub.parameters.symmetric);
      out.rsa = pub.unique.toString('hex');
      break;
    case TPM_ALG_ID.TPM_ALG_ECC:
      out['curve-id'] = { value: TOOLS_CURVE_NAMES[pub.parameters.curveID]!, raw: `0x${pub.parameters.curveID.toString(16)}` };
      out['kdfa-alg'] = alg(pub.parameters.kdf.scheme);
      out['kdfa-halg'] = alg(pub.parameters.kdf.hashAlg);
      out.scheme = alg(pub.parameters.scheme.scheme);
      out['scheme-halg'] = alg(pub.parameters.scheme.hashAlg);
      symmetric(pub.parameters.symmetric);
      out.x = pub.unique.x.toString('hex');
      out.y = pub.unique.y.toString('hex');
      break;
    case TPM_ALG_ID.TPM_ALG_KEYEDHASH:
      out.algorithm = alg(pub.parameters.scheme.scheme);
      if (pub.parameters.scheme.hashAlg !== undefined) {
        out['hash-alg'] = alg(pub.parameters.scheme.hashAlg);
      }
      out.keyedhash = pub.unique.toString('hex');
      break;
    case TPM_ALG_ID.TPM_ALG_SYMCIPHER:
      symmetric(pub.parameters.sym);
      out.symcipher = pub.unique.toString('hex');
      break;
  }
  if (pub.authPolicy.length > 0) {
    out['authorization policy'] = pub.authPolicy.toString('hex');
  }
  return out;
}

/** The header tpm2_print prints for every TPMS_ATTEST type (print_TPMS_ATTEST in tpm2-tools 5.4). */
function asToolsPrintsAttestHeader(attest: ParsedAttest): Record<string, Yaml> {
  const firmware = Buffer.alloc(8);
  // tpm2_print 5.4 hex-dumps the unmarshalled UINT64 from memory: little-endian on this host.
  firmware.writeBigUInt64LE(attest.firmwareVersion);
  return {
    magic: attest.magic.toString(16).padStart(8, '0'),
    type: attest.type.toString(16).padStart(4, '0'),
    qualifiedSigner: attest.qualifiedSigner.toString('hex'),
    extraData: attest.extraData.toString('hex'),
    clockInfo: {
      clock: attest.clockInfo.clock.toString(),
      resetCount: String(attest.clockInfo.resetCount),
      restartCount: String(attest.clockInfo.restartCount),
      safe: attest.clockInfo.safe ? '1' : '0',
    },
    firmwareVersion: firmware.toString('hex'),
  };
}

function asToolsPrintsQuote(attest: ParsedAttest): Yaml {
  if (attest.type !== TPM_ST.TPM_ST_ATTEST_QUOTE) {
    throw new Error('not a quote');
  }
  const { pcrSelect, pcrDigest } = attest.attested;
  return {
    ...asToolsPrintsAttestHeader(attest),
    attested: {
      quote: {
        pcrSelect: {
          count: String(pcrSelect.length),
          pcrSelections: Object.fromEntries(
            pcrSelect.map((bank, i) => [
              String(i),
              {
                hash: `${bank.hash} (${hashAlgorithm(bank.hash).bank})`,
                sizeofSelect: String(bank.sizeofSelect),
                // u32 count ‖ u16 hash ‖ u8 sizeofSelect, then the bitmap.
                pcrSelect: marshalPcrSelection([bank]).subarray(7).toString('hex'),
              },
            ]),
          ),
        },
        pcrDigest: pcrDigest.toString('hex'),
      },
    },
  };
}

describe('our parse of tpm2-tools-made structures equals tpm2_print (tpm2-tools 5.4)', () => {
  let ca: LocalCa | undefined;
  let tpm: SwtpmMachine | undefined;
  let work: string;
  /** name → TPM2B_PUBLIC file written by tpm2-tools. */
  const publics = new Map<string, string>();
  let quoteMsg: string;
  let certify: { attest: string; name: string; qualifiedName: string };

  const machine = (): SwtpmMachine => {
    if (tpm === undefined) {
      throw new Error('swtpm not started');
    }
    return tpm;
  };
  const file = (name: string): string => join(work, name);
  /** One tpm2-tools command, then flush: swtpm has no resource manager, and every context file loaded stays. */
  async function run(tool: string, ...args: string[]): Promise<void> {
    try {
      await tpm2(machine(), tool, ...args);
    } finally {
      await tpm2(machine(), 'flushcontext', '-t');
    }
  }

  async function print(type: string, path: string): Promise<Yaml> {
    const { stdout } = await runTool('tpm2_print', ['-t', type, path]);
    return parseYaml(stdout.toString('utf8'));
  }

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'rackseal-print-'));
    ca = await LocalCa.create();
    tpm = await startSwtpm({ ca, pcrBanks: ['sha1', 'sha256'] });
    await tpm.extendPcr(7, 'sha256', createHash('sha256').update('boot').digest('hex'));
    try {
      await run('readpublic', '-c', '0x81010001', '-o', file('ek-rsa.pub'));
      await run('readpublic', '-c', '0x81010016', '-o', file('ek-p384.pub'));
      for (const [name, alg, scheme] of [['ak-rsassa', 'rsa', 'rsassa'], ['ak-rsapss', 'rsa', 'rsapss'], ['ak-ecdsa', 'ecc', 'ecdsa']] as const) {
        await run('createak', '-C', '0x81010001', '-c', file(`${name}.ctx`), '-G', alg, '-g', 'sha256', '-s', scheme, '-u', file(`${name}.pub`));
      }
      await run('createprimary', '-C', 'o', '-g', 'sha256', '-G', 'rsa', '-c', file('primary.ctx'));
      await writeFile(file('secret'), 'sealed data');
      await run('create', '-C', file('primary.ctx'), '-u', file('sealed.pub'), '-r', file('sealed.priv'), '-i', file('secret'), '-L', 'ab'.repeat(32));
      await run('create', '-C', file('primary.ctx'), '-u', file('hmac.pub'), '-r', file('hmac.priv'), '-G', 'hmac');
      await run('create', '-C', file('primary.ctx'), '-u', file('aes.pub'), '-r', file('aes.priv'), '-G', 'aes256cfb');
      await run('create', '-C', file('primary.ctx'), '-u', file('ecc.pub'), '-r', file('ecc.priv'), '-G', 'ecc', '-c', file('ecc.ctx'));

      quoteMsg = file('q.msg');
      await run('quote', '-c', file('ak-rsassa.ctx'), '-l', 'sha256:0,7,16+sha1:0,23', '-q', '5eed', '-m', quoteMsg, '-s', file('q.sig'), '-g', 'sha256');

      certify = { attest: file('certify.attest'), name: file('ecc.name'), qualifiedName: file('ecc.qname') };
      await run('readpublic', '-c', file('ecc.ctx'), '-n', certify.name, '-q', certify.qualifiedName);
      await run('certify', '-c', file('ecc.ctx'), '-C', file('ak-ecdsa.ctx'), '-g', 'sha256', '-o', certify.attest, '-s', file('certify.sig'));
    } finally {
      await tpm.stop().catch(() => undefined);
    }
    for (const name of ['ek-rsa', 'ek-p384', 'ak-rsassa', 'ak-rsapss', 'ak-ecdsa', 'sealed', 'hmac', 'aes', 'ecc']) {
      publics.set(name, file(`${name}.pub`));
    }
  }, 120_000);

  afterAll(async () => {
    await tpm?.stop();
    await ca?.remove();
    if (work !== undefined) {
      await rm(work, { recursive: true, force: true });
    }
  });

  it.each(['ek-rsa', 'ek-p384', 'ak-rsassa', 'ak-rsapss', 'ak-ecdsa', 'sealed', 'hmac', 'aes', 'ecc'])(
    'TPM2B_PUBLIC %s: every field tpm2_print prints equals ours, and our re-marshalled TPMT_PUBLIC prints the same',
    async (name) => {
      const path = publics.get(name)!;
      const bytes = await readFile(path);
      const pub = unmarshalTpm2bPublic(bytes);
      const printed = await print('TPM2B_PUBLIC', path);
      expect(asToolsPrintsPublic(pub)).toEqual(printed);

      const remarshalled = marshalTpmtPublic(pub);
      expect(remarshalled.equals(bytes.subarray(2))).toBe(true);
      const tpmtPath = file(`${name}.tpmt`);
      await writeFile(tpmtPath, remarshalled);
      expect(await print('TPMT_PUBLIC', tpmtPath)).toEqual(printed);
      expect(unmarshalTpmtPublic(remarshalled).raw.equals(remarshalled)).toBe(true);
    },
  );

  it('TPMS_ATTEST of a tpm2_quote over two banks: every field equals tpm2_print, and so does our re-marshalled copy', async () => {
    const bytes = await readFile(quoteMsg);
    const attest = unmarshalTpmsAttest(bytes);
    const printed = await print('TPMS_ATTEST', quoteMsg);
    expect(asToolsPrintsQuote(attest)).toEqual(printed);
    // The quirk, spelled out: swtpm's firmwareVersion 0x2019102300163636 is printed byte-swapped.
    expect(attest.firmwareVersion).toBe(0x2019102300163636n);
    expect(printed).toMatchObject({ firmwareVersion: '3636160023101920' });

    const copy = file('q-copy.msg');
    await writeFile(copy, marshalTpmsAttest(attest));
    expect(await print('TPMS_ATTEST', copy)).toEqual(printed);
  });

  it('TPMS_ATTEST of a tpm2_certify: the header equals tpm2_print; the certify body equals tpm2_readpublic -n/-q', async () => {
    const bytes = await readFile(certify.attest);
    const attest = unmarshalTpmsAttest(bytes);
    expect(attest.type).toBe(TPM_ST.TPM_ST_ATTEST_CERTIFY);
    // tpm2_print 5.4 prints the header, then gives up on anything but a quote.
    const failure = await runTool('tpm2_print', ['-t', 'TPMS_ATTEST', certify.attest]).then(
      () => undefined,
      (error: unknown) => error as ToolFailed,
    );
    expect(failure).toBeInstanceOf(ToolFailed);
    expect(failure!.stderr).toContain('Cannot print unsupported type 0x8017');
    expect(parseYaml(failure!.stdout.toString('utf8'))).toEqual(asToolsPrintsAttestHeader(attest));

    expect(attest.type === TPM_ST.TPM_ST_ATTEST_CERTIFY && attest.attested.name.equals(await readFile(certify.name))).toBe(true);
    expect(attest.type === TPM_ST.TPM_ST_ATTEST_CERTIFY && attest.attested.qualifiedName.equals(await readFile(certify.qualifiedName))).toBe(true);
    expect(marshalTpmsAttest(attest).equals(bytes)).toBe(true);
  });

  it('the real GCP Shielded VM quote and AK: our parse equals tpm2_print too', async () => {
    const gcp = JSON.parse(await readFile(GCP_FIXTURE, 'utf8')) as { AK: { Public: string }; Quote: { Quote: string } };
    const quotePath = file('gcp.msg');
    await writeFile(quotePath, Buffer.from(gcp.Quote.Quote, 'base64'));
    expect(asToolsPrintsQuote(unmarshalTpmsAttest(await readFile(quotePath)))).toEqual(await print('TPMS_ATTEST', quotePath));
    const akPath = file('gcp-ak.tpmt');
    await writeFile(akPath, Buffer.from(gcp.AK.Public, 'base64'));
    expect(asToolsPrintsPublic(unmarshalTpmtPublic(await readFile(akPath)))).toEqual(await print('TPMT_PUBLIC', akPath));
  });
});
