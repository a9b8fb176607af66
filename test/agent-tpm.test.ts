/**
 * `rackseal-agent tpm info` and `tpm quote` (docs/architecture.md §6), the built CLI against swtpm. Oracles: the
 * fixture's EK certificate files (ekPubHash), tpm2_checkquote and `rackseal quote verify` on the
 * written files, tpm2_pcrread for q.pcrs, and tpm2_getcap for what the TPM holds afterwards.
 */
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ekPubHash, unmarshalTpm2bPublic } from '@rackseal/tpm2';
import { runAgentCliAsync, runRacksealCliAsync } from './support/cli-runner';
import { freePort, LOCALHOST } from './support/free-port';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { tpm2 } from './support/tpm2-tools';

jest.setTimeout(60_000);

/** Async: the swtpm child must keep being served while we wait. */
const agent = (...args: string[]) => runAgentCliAsync(args);
const cli = (...args: string[]) => runRacksealCliAsync(args);

async function transientAndSessions(tpm: SwtpmMachine): Promise<string> {
  const parts = await Promise.all(['handles-transient', 'handles-loaded-session', 'handles-saved-session'].map(async (c) => (await tpm2(tpm, 'getcap', c)).stdout.toString('utf8').trim()));
  return parts.join('');
}

describe('rackseal-agent tpm (swtpm)', () => {
  const fixture = useSwtpms(1, { p256: true, pcrBanks: ['sha1', 'sha256'] });
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rackseal-agent-tpm-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  afterEach(async () => {
    expect(await transientAndSessions(fixture.at(0))).toBe('');
  });

  it('tpm info --json: manufacturer, firmware, banks, and each EK certificate with its ekPubHash and a matching EK', async () => {
    const tpm = fixture.at(0);
    const result = await agent('tpm', 'info', '--tpm', tpm.device, '--json');
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const info = JSON.parse(result.stdout) as {
      manufacturer: string;
      firmwareVersionRaw: string[];
      spec: { family: string; revision: string };
      pcrBanks: { bank: string; pcrs: number[] }[];
      ekCertificates: { nvIndex: string; keyType: string; quirks: string[]; ekPubHash: string; ekMatchesCertificate: boolean; ek: { handle: string | null; source: string; ekPubHash: string } }[];
    };
    expect(info).toMatchObject({ manufacturer: 'IBM', vendorString: 'SW   TPM', firmwareVersion: '8217.4131', firmwareVersionRaw: ['0x20191023', '0x00163636'], spec: { family: '2.0', level: 0, revision: '1.64' } });
    const all = Array.from({ length: 24 }, (_, i) => i);
    expect(info.pcrBanks).toEqual([{ bank: 'sha1', pcrs: all }, { bank: 'sha256', pcrs: all }]);

    const hashOf = async (der: Promise<Buffer>) => ekPubHash(new X509Certificate(await der));
    // swtpm's certificates mark their directoryName SAN critical: tolerated, and named as the server names it.
    const swtpmQuirks = ['critical-san-directory-name'];
    expect(info.ekCertificates.map((c) => [c.nvIndex, c.keyType, c.quirks, c.ekPubHash, c.ekMatchesCertificate, c.ek])).toEqual([
      ['0x01c00002', 'rsa-2048', swtpmQuirks, await hashOf(tpm.rsaEkCertDer()), true, { handle: '0x81010001', source: 'persistent', ekPubHash: await hashOf(tpm.rsaEkCertDer()) }],
      // The fixture's P-256 EK is not persisted: the agent derives it (CreatePrimary, L-2) and flushes it.
      ['0x01c0000a', 'ecc-p256', swtpmQuirks, await hashOf(tpm.p256EkCertDer()), true, { handle: null, source: 'default-template', ekPubHash: await hashOf(tpm.p256EkCertDer()) }],
      ['0x01c00016', 'ecc-p384', swtpmQuirks, await hashOf(tpm.eccEkCertDer()), true, { handle: '0x81010016', source: 'persistent', ekPubHash: await hashOf(tpm.eccEkCertDer()) }],
    ]);
    expect(info.ekCertificates[0]).toMatchObject({ subject: 'CN=unknown', issuer: 'CN=swtpm-localca' });
  });

  it('tpm info without --json says the same for a person', async () => {
    const tpm = fixture.at(0);
    const result = await agent('tpm', 'info', '--tpm', tpm.device);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain(`TPM at ${tpm.device}\n  manufacturer: IBM (0x49424d00), vendor string "SW   TPM"\n  firmware: 8217.4131 (0x20191023 0x00163636)\n`);
    expect(result.stdout).toContain('  PCR banks: sha1 (24 PCRs), sha256 (24 PCRs)\n');
    expect(result.stdout).toContain(`      ekPubHash: ${ekPubHash(new X509Certificate(await tpm.rsaEkCertDer()))}\n      EK: persistent at 0x81010001, matches the certificate\n`);
    expect(result.stdout).toContain('      EK: derived (default-template), matches the certificate\n');
  });

  it.each([
    { label: 'RSA AK under the RSA EK', ek: 'rsa-2048', ak: 'rsa', selection: 'sha256:0,7' },
    { label: 'ECC AK under the P-256 EK', ek: 'ecc-p256', ak: 'ecc', selection: 'sha1:3+sha256:0,7' },
    { label: 'RSA AK under the P-384 EK, empty nonce', ek: 'ecc-p384', ak: 'rsa', selection: 'sha256:7', nonce: '' },
    // 13 PCRs over two banks: PCR_Read loops past 8. tpm2_checkquote 5.4 cannot check 8 or more PCRs
    // (tpm2-software/tpm2-tools#3542), so here tpm2_print's pcrDigest is the independent oracle.
    { label: 'ECC AK under the RSA EK, 13 PCRs', ek: 'rsa-2048', ak: 'ecc', selection: 'sha1:0,1,2,3,4,5,6,7,8,9+sha256:0,7,16' },
  ])('tpm quote ($label) writes files tpm2-tools and rackseal quote verify accept', async ({ ek, ak, selection, nonce: fixedNonce }) => {
    const tpm = fixture.at(0);
    await tpm.extendPcr(7, 'sha256', randomBytes(32).toString('hex'));
    await tpm.extendPcr(3, 'sha1', randomBytes(20).toString('hex'));
    const nonce = fixedNonce ?? randomBytes(20).toString('hex');
    const out = await mkdtemp(join(dir, `quote-${ek}-`));
    const result = await agent('tpm', 'quote', '--tpm', tpm.device, '--selection', selection, '--nonce', nonce, '--out-dir', out, '--ek', ek, '--ak', ak);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const files = ['ak.pub', 'q.msg', 'q.sig', 'q.pcrs'].map((f) => join(out, f));
    const [akPub, msg, sig, pcrs] = files as [string, string, string, string];
    expect(result.stdout).toContain(`wrote ${files.join(', ')}`);
    expect(unmarshalTpm2bPublic(await readFile(akPub)).type).toBe(ak === 'rsa' ? 0x0001 : 0x0023);

    const count = selection.split('+').reduce((n, bank) => n + bank.split(',').length, 0);
    if (count < 8) {
      await tpm2(tpm, 'checkquote', '-u', akPub, '-m', msg, '-s', sig, '-f', pcrs, '-l', selection, '-g', 'sha256', ...(nonce === '' ? [] : ['-q', nonce]));
    }
    const printed = (await tpm2(tpm, 'print', '-t', 'TPMS_ATTEST', msg)).stdout.toString('utf8');
    expect(/pcrDigest: ([0-9a-f]+)/.exec(printed)?.[1]).toBe(createHash('sha256').update(await readFile(pcrs)).digest('hex'));
    expect(/extraData: ([0-9a-f]*)/.exec(printed)?.[1]).toBe(nonce);
    const verified = await cli('quote', 'verify', '--ak', akPub, '--msg', msg, '--sig', sig, '--pcrs', pcrs, '--selection', selection, '--nonce', nonce, '--json');
    expect(verified.stderr).toBe('');
    expect(verified.status).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ valid: true, akAttributesChecked: true, nonce, selection });

    const expected = join(out, 'expected.pcrs');
    await tpm2(tpm, 'pcrread', selection, '-o', expected);
    expect(await readFile(pcrs)).toEqual(await readFile(expected));
  });

  it('a quote the TPM refuses (a 100-byte nonce is larger than TPM2B_DATA) exits 1 with the TPM error, and leaves nothing loaded', async () => {
    const tpm = fixture.at(0);
    const result = await agent('tpm', 'quote', '--tpm', tpm.device, '--selection', 'sha256:0', '--nonce', 'ab'.repeat(100), '--out-dir', join(dir, 'refused'));
    expect(result.status).toBe(1);
    expect(result.stderr).toBe('rackseal-agent: TPM2_Quote failed: TPM_RC_SIZE (0x1d5) on parameter 1: structure is the wrong size\n');
  });

  it('PCRs of a bank the TPM has not allocated: exit 1 naming them', async () => {
    const tpm = fixture.at(0);
    const result = await agent('tpm', 'quote', '--tpm', tpm.device, '--selection', 'sha384:0', '--nonce', '00', '--out-dir', join(dir, 'sha384'));
    expect(result.status).toBe(1);
    expect(result.stderr).toBe('rackseal-agent: TPM2_PCR_Read: the TPM returned no value for sha384:0 (bank not allocated, or no such PCR?)\n');
  });

  it.each([
    { label: 'a missing device node', device: '/dev/rackseal-no-such-tpm', message: '/dev/rackseal-no-such-tpm: no such device: is a TPM present and its driver (tpm_tis, tpm_crb) loaded?' },
    { label: 'a DEVICE that names no transport', device: 'tpm0', message: 'unrecognised TPM device "tpm0": use /dev/tpmrm0, /dev/tpm0 or swtpm:HOST:PORT' },
  ])('$label: exit 2 with a clear message, for info and quote', async ({ device, message }) => {
    for (const args of [['info'], ['quote', '--selection', 'sha256:0', '--nonce', '00', '--out-dir', join(dir, 'never')]]) {
      const result = await agent('tpm', ...args, '--tpm', device);
      expect([result.status, result.stderr, result.stdout]).toEqual([2, `rackseal-agent: ${message}\n`, '']);
    }
  });

  it('swtpm not listening: exit 2 naming the port', async () => {
    const port = await freePort();
    const result = await agent('tpm', 'info', '--tpm', `swtpm:${LOCALHOST}:${port}`);
    expect([result.status, result.stderr]).toEqual([2, `rackseal-agent: swtpm:${LOCALHOST}:${port}: connection refused: is swtpm running on this port?\n`]);
  });

  it.each([
    { args: ['--selection', 'sha256:0,0', '--nonce', '00'], message: '--selection: invalid PCR selection "sha256:0,0": a PCR is named twice in sha256' },
    { args: ['--selection', 'sha256:0', '--nonce', 'xyz'], message: '--nonce must be an even number of hex digits' },
    { args: ['--selection', 'sha256:0', '--nonce', '00', '--ek', 'rsa-1024'], message: '--ek must be one of rsa-2048, ecc-p256, ecc-p384' },
    { args: ['--selection', 'sha256:0', '--nonce', '00', '--ak', 'dsa'], message: '--ak must be rsa or ecc' },
  ])('usage errors exit 2 before the TPM is touched: $message', async ({ args, message }) => {
    // A port nobody listens on: had the command gone to the TPM it would say "connection refused".
    const result = await agent('tpm', 'quote', '--tpm', `swtpm:${LOCALHOST}:${await freePort()}`, '--out-dir', join(dir, 'usage'), ...args);
    expect([result.status, result.stderr]).toEqual([2, `rackseal-agent: ${message}\n`]);
  });

  it('agrees with the server about a quirky EK certificate: NV header announcing more than the index holds, 0xFF padding', async () => {
    // The P-256 certificate re-stored as some vendors store theirs: the TCG NV header 10 01 00 ‖ u16,
    // here announcing 2000 bytes in a 1600-byte index, then 0xFF fill. The server side (ek-trust, as
    // `rackseal ek inspect` and the inventory import run it) reads it; the agent must read it the same.
    const tpm = fixture.at(0);
    const index = '0x01c0000a';
    const der = await tpm.p256EkCertDer();
    const quirky = Buffer.concat([Buffer.from([0x10, 0x01, 0x00, 2000 >> 8, 2000 & 0xff]), der, Buffer.alloc(1600 - 5 - der.length, 0xff)]);
    const quirkyFile = join(dir, 'p256-quirky.bin');
    const derFile = join(dir, 'p256.der');
    await writeFile(quirkyFile, quirky);
    await writeFile(derFile, der);
    const attributes = 'ppwrite|writedefine|ppread|ownerread|authread|no_da|platformcreate';
    const store = async (file: string, size: number, lock: boolean) => {
      await tpm2(tpm, 'nvundefine', index, '-C', 'p');
      await tpm2(tpm, 'nvdefine', index, '-C', 'p', '-s', String(size), '-a', attributes);
      await tpm2(tpm, 'nvwrite', index, '-C', 'p', '-i', file);
      if (lock) {
        await tpm2(tpm, 'nvwritelock', index, '-C', 'p');
      }
    };
    await store(quirkyFile, quirky.length, false);
    try {
      const agentRun = await agent('tpm', 'info', '--tpm', tpm.device, '--json');
      const serverRun = await cli('ek', 'inspect', '--json', quirkyFile);
      expect([agentRun.status, agentRun.stderr, serverRun.status, serverRun.stderr]).toEqual([0, '', 0, '']);
      const server = JSON.parse(serverRun.stdout) as { ekPubHash: string; quirks: string[]; subject: string; issuer: string; notAfter: string };
      expect(server.quirks).toEqual(['nv-header', 'trailing-padding', 'critical-san-directory-name']);
      const agentView = (JSON.parse(agentRun.stdout) as { ekCertificates: Record<string, unknown>[] }).ekCertificates.find((c) => c.nvIndex === index);
      expect(agentView).toEqual({
        nvIndex: index,
        keyType: 'ecc-p256',
        quirks: server.quirks,
        ekPubHash: server.ekPubHash,
        ek: { handle: null, source: 'default-template', ekPubHash: server.ekPubHash },
        ekMatchesCertificate: true,
        subject: server.subject,
        issuer: server.issuer,
        notAfter: server.notAfter,
      });
    } finally {
      await store(derFile, der.length, true);
    }
  });

  it('--help loads neither the TPM nor the certificate code (the agent starts at boot: they load when a command runs)', async () => {
    const hook = join(dir, 'help-modules.js');
    const list = join(dir, 'help-modules.json');
    await writeFile(hook, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(list)}, JSON.stringify(Object.keys(require.cache))));\n`);
    for (const args of [['--help'], ['tpm', 'info', '--help'], ['tpm', 'quote', '--help']]) {
      const result = await runAgentCliAsync(args, { nodeArgs: ['--require', hook] });
      expect([result.status, result.stderr]).toEqual([0, '']);
      expect(result.stdout).toMatch(/^Usage: rackseal-agent /);
      const loaded = JSON.parse(await readFile(list, 'utf8')) as string[];
      expect(loaded.filter((m) => /\/dist\/libs\/(tpm2|ek-trust)\/|\/dist\/apps\/cli\//.test(m))).toEqual([]);
      expect(loaded.some((m) => m.includes('/dist/libs/command-line/'))).toBe(true);
    }
  });

  it('stays light: no Nest, TypeORM, pg, Redis or BullMQ module is loaded', async () => {
    const tpm = fixture.at(0);
    const hook = join(dir, 'loaded-modules.js');
    const list = join(dir, 'loaded-modules.json');
    await writeFile(hook, `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(list)}, JSON.stringify(Object.keys(require.cache))));\n`);
    const result = await runAgentCliAsync(['tpm', 'info', '--tpm', tpm.device], { nodeArgs: ['--require', hook] });
    expect(result.status).toBe(0);
    const loaded = JSON.parse(await readFile(list, 'utf8')) as string[];
    expect(loaded.some((m) => m.includes('/dist/libs/tpm2/'))).toBe(true);
    expect(loaded.some((m) => m.includes('/dist/libs/ek-trust/'))).toBe(true);
    expect(loaded.filter((m) => m.includes('/dist/apps/cli/'))).toEqual([]);
    expect(loaded.filter((m) => /node_modules\/(@nestjs|typeorm|pg|ioredis|bullmq|reflect-metadata|class-validator)\//.test(m))).toEqual([]);
  });
});
