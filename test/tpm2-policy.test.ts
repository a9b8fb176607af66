/**
 * Policy digests (libs/tpm2 policy/) against swtpm: what tpm2_createpolicy computes and what trial
 * sessions accumulate under tpm2_policypcr / policysecret / policycommandcode / policyor /
 * policyauthorize (tpm2-tools 5.4), and the EK authPolicy values swtpm's EKs carry. The TPM has the
 * sha1 and sha256 banks so selections across two banks are checked against live PCRs too.
 */
import {
  EK_POLICY_A_SHA256,
  ekPolicyA,
  ekPolicyB,
  handleName,
  parsePcrSelection,
  parsePcrValues,
  policyAuthorize,
  policyOr,
  PolicyDigest,
  TPM_ALG_ID,
  TPM_CC,
  TPM_RH,
  unmarshalTpm2bPublic,
} from '@rackseal/tpm2';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useSwtpms } from './support/swtpm';
import { flushAllContexts, tpm2 } from './support/tpm2-tools';

const { TPM_ALG_SHA256: SHA256, TPM_ALG_SHA384: SHA384 } = TPM_ALG_ID;

describe('policy digests equal tpm2-tools trial sessions on swtpm', () => {
  const fixture = useSwtpms(1, { pcrBanks: ['sha1', 'sha256'] });
  let dir: string;
  const at = (file: string): string => join(dir, file);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rackseal-policy-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * Runs policy commands in one trial session (tpm2_startauthsession without --policy-session) and
   * returns the digest the last one wrote with -L. Each step gets the session file and an output path.
   */
  async function trial(hash: 'sha256' | 'sha384', ...steps: ((session: string, out: string) => string[])[]): Promise<string> {
    const tpm = fixture.at(0);
    const session = at('trial.ctx');
    const out = at(`policy-${randomBytes(4).toString('hex')}.bin`);
    try {
      await tpm2(tpm, 'startauthsession', '-g', hash, '-S', session);
      for (const step of steps) {
        const [tool, ...args] = step(session, out);
        await tpm2(tpm, tool!, ...args);
      }
      return (await readFile(out)).toString('hex');
    } finally {
      await flushAllContexts(tpm);
    }
  }

  // tpm2-tools takes at most 8 PCRs in a selection (the TPM's PCR_Read limit), so no wider one here.
  const SELECTIONS = ['sha256:0,7', 'sha256:7', 'sha256:0,2,4,8,10,16,22,23', 'sha1:0,1+sha256:0,7', 'sha256:4+sha1:7,23'];

  it.each(SELECTIONS)('PolicyPCR %s with given values = tpm2_createpolicy -f = tpm2_policypcr -f in a trial session', async (text) => {
    const selection = parsePcrSelection(text);
    const valuesFile = at('values.bin');
    const bytes = randomBytes(selection.reduce((n, bank) => n + bank.pcrs.length * (bank.hash === TPM_ALG_ID.TPM_ALG_SHA1 ? 20 : 32), 0));
    await writeFile(valuesFile, bytes);
    const ours = new PolicyDigest(SHA256).pcr(selection, parsePcrValues(selection, bytes)).digest.toString('hex');

    const created = at('created.bin');
    try {
      await tpm2(fixture.at(0), 'createpolicy', '--policy-pcr', '-l', text, '-f', valuesFile, '-L', created);
    } finally {
      await flushAllContexts(fixture.at(0));
    }
    expect((await readFile(created)).toString('hex')).toBe(ours);
    expect(await trial('sha256', (s, out) => ['policypcr', '-S', s, '-l', text, '-f', valuesFile, '-L', out])).toBe(ours);
  });

  it.each(['sha256:0,7', 'sha1:0,7+sha256:7,16'])('PolicyPCR %s over the live PCRs (tpm2_pcrread -o) = tpm2_policypcr reading them itself', async (text) => {
    const tpm = fixture.at(0);
    await tpm.extendPcr(7, 'sha256', randomBytes(32).toString('hex'));
    await tpm.extendPcr(7, 'sha1', randomBytes(20).toString('hex'));
    await tpm.extendPcr(16, 'sha256', randomBytes(32).toString('hex'));
    await tpm2(tpm, 'pcrread', text, '-o', at('live.bin'));
    const selection = parsePcrSelection(text);
    const ours = new PolicyDigest(SHA256).pcr(selection, parsePcrValues(selection, await readFile(at('live.bin')))).digest.toString('hex');
    expect(await trial('sha256', (s, out) => ['policypcr', '-S', s, '-l', text, '-L', out])).toBe(ours);
  });

  it('PolicySecret(TPM_RH_ENDORSEMENT) = tpm2_policysecret -c e = EK PolicyA = authPolicy of the RSA EK (SHA-256 and SHA-384)', async () => {
    const endorsement = handleName(TPM_RH.TPM_RH_ENDORSEMENT);
    const ours256 = new PolicyDigest(SHA256).secret(endorsement).digest;
    expect(ours256.equals(ekPolicyA(SHA256))).toBe(true);
    expect(ours256.equals(EK_POLICY_A_SHA256)).toBe(true);
    expect(await trial('sha256', (s, out) => ['policysecret', '-S', s, '-c', 'e', '-L', out])).toBe(ours256.toString('hex'));
    expect(await trial('sha384', (s, out) => ['policysecret', '-S', s, '-c', 'e', '-L', out])).toBe(
      new PolicyDigest(SHA384).secret(endorsement).digest.toString('hex'),
    );
    await tpm2(fixture.at(0), 'readpublic', '-c', '0x81010001', '-o', at('ek-rsa.pub'));
    expect(unmarshalTpm2bPublic(await readFile(at('ek-rsa.pub'))).authPolicy.toString('hex')).toBe(ours256.toString('hex'));
  });

  it('EK PolicyB (SHA-384) = PolicyOR(PolicyA, PolicyAuthorizeNV(0x01c07f02)) = authPolicy of swtpm\'s P-384 EK 0x81010016', async () => {
    await tpm2(fixture.at(0), 'readpublic', '-c', '0x81010016', '-o', at('ek-p384.pub'));
    const ek = unmarshalTpm2bPublic(await readFile(at('ek-p384.pub')));
    expect(ek.nameAlg).toBe(SHA384);
    expect(ekPolicyB(SHA384).toString('hex')).toBe(ek.authPolicy.toString('hex'));
    expect(ek.authPolicy.toString('hex')).toBe(
      'b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3b4e4cb1c0ad9bde419cacb47ba09699646150f9fc000f3f80e12',
    );
  });

  it('PolicyCommandCode(TPM_CC_Unseal), alone and after PolicyPCR = tpm2_policycommandcode', async () => {
    expect(await trial('sha256', (s, out) => ['policycommandcode', '-S', s, '-L', out, 'TPM2_CC_Unseal'])).toBe(
      new PolicyDigest(SHA256).commandCode(TPM_CC.TPM_CC_Unseal).digest.toString('hex'),
    );
    const text = 'sha256:0,7';
    const values = randomBytes(64);
    await writeFile(at('values.bin'), values);
    const selection = parsePcrSelection(text);
    const ours = new PolicyDigest(SHA256).pcr(selection, parsePcrValues(selection, values)).commandCode(TPM_CC.TPM_CC_Unseal).digest;
    expect(
      await trial(
        'sha256',
        (s) => ['policypcr', '-S', s, '-l', text, '-f', at('values.bin')],
        (s, out) => ['policycommandcode', '-S', s, '-L', out, '0x15e'],
      ),
    ).toBe(ours.toString('hex'));
  });

  it('PolicyOR of two and of three branches = tpm2_policyor', async () => {
    const a = ekPolicyA(SHA256);
    const b = new PolicyDigest(SHA256).commandCode(TPM_CC.TPM_CC_Unseal).digest;
    const c = randomBytes(32);
    await writeFile(at('a.bin'), a);
    await writeFile(at('b.bin'), b);
    await writeFile(at('c.bin'), c);
    expect(await trial('sha256', (s, out) => ['policyor', '-S', s, '-L', out, `sha256:${at('a.bin')},${at('b.bin')}`])).toBe(
      policyOr(SHA256, [a, b]).toString('hex'),
    );
    expect(await trial('sha256', (s, out) => ['policyor', '-S', s, '-L', out, `sha256:${at('a.bin')},${at('b.bin')},${at('c.bin')}`])).toBe(
      new PolicyDigest(SHA256).or([a, b, c]).digest.toString('hex'),
    );
  });

  it('PolicyAuthorize resets the digest and binds the key Name and policyRef = tpm2_policyauthorize', async () => {
    await tpm2(fixture.at(0), 'readpublic', '-c', '0x81010001', '-n', at('key.name'));
    const keyName = await readFile(at('key.name'));
    const policyRef = Buffer.from('rackseal machine policy v1');
    const approved = new PolicyDigest(SHA256).commandCode(TPM_CC.TPM_CC_Unseal).digest;
    await writeFile(at('approved.bin'), approved);
    await writeFile(at('ref.bin'), policyRef);
    const ours = policyAuthorize(SHA256, keyName, policyRef).toString('hex');
    // After a PolicyCommandCode in the same session: the earlier digest does not survive.
    expect(
      await trial(
        'sha256',
        (s) => ['policycommandcode', '-S', s, 'TPM2_CC_Unseal'],
        (s, out) => ['policyauthorize', '-S', s, '-L', out, '-i', at('approved.bin'), '-q', at('ref.bin'), '-n', at('key.name')],
      ),
    ).toBe(ours);
    expect(new PolicyDigest(SHA256).pcr(parsePcrSelection('sha256:7'), [Buffer.alloc(32)]).authorize(keyName, policyRef).digest.toString('hex')).toBe(ours);
  });
});
