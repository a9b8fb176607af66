import { execFileSync } from 'node:child_process';
import {
  createCipheriv,
  createECDH,
  createHash,
  createHmac,
  createPublicKey,
  generateKeyPairSync,
  publicEncrypt,
  constants as cryptoConstants,
  verify as cryptoVerify,
} from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createImportBlob,
  ekPublicFromKey,
  makeCredential,
  marshalTpm2bPublic,
  objectName,
  parsePcrSelection,
  PolicyDigest,
  TPM_ALG_ID,
  type TPMT_PUBLIC,
  publicKeyFromTpmt,
  splitPcrValues,
  unmarshalTpm2bPublic,
  verifyQuote,
} from '@rackseal/tpm2';
import { DIST } from '../test/support/processes';
import { formatTable, measure, type Measurement, us } from './measure';

interface QuoteVector {
  selection: string;
  nonce: string;
  msg: string;
  sig: string;
  pcrs: string;
}

/**
 * Server-side TPM operations, each measured three ways in one run:
 * (a) the library, (b) the "floor": only the node:crypto primitives the operation must perform,
 * with no TPM marshalling, and (c) the same operation done by tpm2-tools processes.
 * Targets (issue 3): library ≤ 2× floor; enrollment (MakeCredential + quote check) ≥ 100× faster
 * than tpm2-tools.
 */
export async function tpm2Bench(): Promise<string> {
  const vectors = JSON.parse(readFileSync(join(DIST, '..', 'libs/tpm2/src/verify/swtpm-vectors.json'), 'utf8')) as Record<
    string,
    { tpm2bPublic?: string } & Partial<QuoteVector>
  >;
  const ak = unmarshalTpm2bPublic(Buffer.from(vectors.rsassaAk!.tpm2bPublic!, 'hex'));
  const akName = objectName(ak);
  const akKey = publicKeyFromTpmt(ak);
  const quote = vectors.rsassaQuote as QuoteVector;
  const selection = parsePcrSelection(quote.selection);
  const attest = Buffer.from(quote.msg, 'hex');
  const signature = Buffer.from(quote.sig, 'hex');
  const nonce = Buffer.from(quote.nonce, 'hex');
  const pcrBytes = Buffer.from(quote.pcrs, 'hex');
  const pcrValues = splitPcrValues(selection, pcrBytes)!;

  const rsaEk = ekPublicFromKey(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey);
  const rsaEkKey = publicKeyFromTpmt(rsaEk);
  const eccEk = ekPublicFromKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
  const eccEkPoint = Buffer.concat([Buffer.from([4]), eccEk.type === 0x0023 ? eccEk.unique.x : Buffer.alloc(0), eccEk.type === 0x0023 ? eccEk.unique.y : Buffer.alloc(0)]);
  const secret = Buffer.alloc(32, 7);
  const policy = new PolicyDigest(TPM_ALG_ID.TPM_ALG_SHA256).pcr(selection, pcrValues).digest;

  // The floors: exactly the primitive work each operation cannot avoid, starting with importing
  // the EK or AK public key into OpenSSL (each enrollment brings a new one).
  const importKey = (pub: TPMT_PUBLIC) => {
    if (pub.type === TPM_ALG_ID.TPM_ALG_RSA) {
      createPublicKey({ key: { kty: 'RSA', n: pub.unique.toString('base64url'), e: 'AQAB' }, format: 'jwk' });
    } else if (pub.type === TPM_ALG_ID.TPM_ALG_ECC) {
      createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: pub.unique.x.toString('base64url'), y: pub.unique.y.toString('base64url') }, format: 'jwk' });
    }
  };
  const oaep = (label: string) =>
    publicEncrypt({ key: rsaEkKey, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: Buffer.from(`${label}\0`) }, Buffer.alloc(32, 1));
  const kdfAndWrap = (payload: Buffer) => {
    const seed = Buffer.alloc(32, 2);
    const symKey = createHmac('sha256', seed).update('STORAGE').digest().subarray(0, 16);
    const hmacKey = createHmac('sha256', seed).update('INTEGRITY').digest();
    const enc = createCipheriv('aes-128-cfb', symKey, Buffer.alloc(16)).update(payload);
    return createHmac('sha256', hmacKey).update(enc).update(akName).digest();
  };
  const floorMakeCredentialRsa = () => {
    importKey(rsaEk);
    oaep('IDENTITY');
    kdfAndWrap(secret);
  };
  const floorMakeCredentialEcc = () => {
    importKey(eccEk);
    const ephemeral = createECDH('prime256v1');
    ephemeral.generateKeys();
    const z = ephemeral.computeSecret(eccEkPoint);
    createHash('sha256').update(z).digest();
    kdfAndWrap(secret);
  };
  const floorImportBlob = () => {
    importKey(rsaEk);
    oaep('DUPLICATE');
    createHash('sha256').update(secret).digest();
    createHash('sha256').update(Buffer.alloc(78)).digest();
    kdfAndWrap(Buffer.alloc(70));
  };
  const floorQuoteVerify = () => {
    importKey(ak);
    cryptoVerify('sha256', attest, akKey, signature.subarray(6));
    createHash('sha256').update(pcrBytes).digest();
  };

  const ours: Record<string, () => unknown> = {
    'MakeCredential RSA-2048 EK': () => makeCredential(rsaEk, akName, secret),
    'MakeCredential P-256 EK': () => makeCredential(eccEk, akName, secret),
    'import blob (PolicyPCR) RSA-2048 EK': () => createImportBlob(rsaEk, secret, { authPolicy: policy }),
    'quote verify RSASSA-2048 sha256:0,7': () => {
      const result = verifyQuote({ akPublic: ak, attest, signature, nonce, pcrValues, selection });
      if (!result.ok) {
        throw new Error(`bench quote refused: ${result.reason}`);
      }
    },
  };
  const floors: Record<string, () => unknown> = {
    'MakeCredential RSA-2048 EK': floorMakeCredentialRsa,
    'MakeCredential P-256 EK': floorMakeCredentialEcc,
    'import blob (PolicyPCR) RSA-2048 EK': floorImportBlob,
    'quote verify RSASSA-2048 sha256:0,7': floorQuoteVerify,
  };

  const rows: string[][] = [['operation', 'rackseal (mean)', 'p99', 'node:crypto floor', 'ratio to floor']];
  const results: Record<string, Measurement> = {};
  for (const name of Object.keys(ours)) {
    const a = await measure(name, ours[name]!, { iterations: 5000 });
    const b = await measure(`${name} floor`, floors[name]!, { iterations: 5000 });
    results[name] = a;
    rows.push([name, us(a.meanUs), us(a.p99Us), us(b.meanUs), `${(a.meanUs / b.meanUs).toFixed(2)}×`]);
  }

  // (c) tpm2-tools processes doing the same server-side work, as an enrollment needs it.
  const dir = mkdtempSync(join(tmpdir(), 'rackseal-bench-'));
  try {
    writeFileSync(join(dir, 'ek.pub'), marshalTpm2bPublic(rsaEk));
    writeFileSync(join(dir, 'secret.bin'), secret);
    writeFileSync(join(dir, 'ak.pub'), Buffer.from(vectors.rsassaAk!.tpm2bPublic!, 'hex'));
    writeFileSync(join(dir, 'q.msg'), attest);
    writeFileSync(join(dir, 'q.sig'), signature);
    writeFileSync(join(dir, 'q.pcrs'), pcrBytes);
    const makecredential = () =>
      execFileSync('tpm2_makecredential', ['-T', 'none', '-u', join(dir, 'ek.pub'), '-s', join(dir, 'secret.bin'), '-n', akName.toString('hex'), '-o', join(dir, 'cred.out')], { stdio: 'ignore' });
    const checkquote = () =>
      execFileSync('tpm2_checkquote', ['-u', join(dir, 'ak.pub'), '-m', join(dir, 'q.msg'), '-s', join(dir, 'q.sig'), '-f', join(dir, 'q.pcrs'), '-l', quote.selection, '-g', 'sha256', '-q', quote.nonce], { stdio: 'ignore' });
    const toolsMake = await measure('tpm2_makecredential -T none', makecredential, { iterations: 50, warmup: 3 });
    const toolsCheck = await measure('tpm2_checkquote', checkquote, { iterations: 50, warmup: 3 });
    const enrollmentTools = toolsMake.meanUs + toolsCheck.meanUs;
    const enrollmentOurs = results['MakeCredential RSA-2048 EK']!.meanUs + results['quote verify RSASSA-2048 sha256:0,7']!.meanUs;
    const toolRows = [
      ['server-side enrollment step', 'tpm2-tools processes', 'rackseal', 'speed-up'],
      ['MakeCredential RSA-2048 EK', us(toolsMake.meanUs), us(results['MakeCredential RSA-2048 EK']!.meanUs), `${(toolsMake.meanUs / results['MakeCredential RSA-2048 EK']!.meanUs).toFixed(0)}×`],
      ['quote verify', us(toolsCheck.meanUs), us(results['quote verify RSASSA-2048 sha256:0,7']!.meanUs), `${(toolsCheck.meanUs / results['quote verify RSASSA-2048 sha256:0,7']!.meanUs).toFixed(0)}×`],
      ['enrollment (both)', us(enrollmentTools), us(enrollmentOurs), `${(enrollmentTools / enrollmentOurs).toFixed(0)}×`],
    ];
    return `${formatTable(rows)}\n\n${formatTable(toolRows)}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
