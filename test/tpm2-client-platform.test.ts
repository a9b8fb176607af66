/**
 * The platform half of the TPM command client (libs/tpm2/src/commands: GetCapability, NV, PCR,
 * Startup, GetRandom; operations/ek-certificates) against swtpm, each result checked against what
 * tpm2-tools reads from the same TPM (or, for pcrExtend, against the fixture's tpm2_pcrextend and a
 * software hash chain).
 *
 * swtpm serves one TCP connection at a time: a tpm2-tools call blocks while a client of ours is
 * connected. So every test holds its TpmClient only inside withClient(), closed before tools run.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unwrapCertificate } from '@rackseal/ek-trust';
import {
  getHandles,
  getPcrBanks,
  getRandom,
  getTpmProperties,
  getTpmProperty,
  hashAlgorithm,
  nvReadAll,
  nvReadPublic,
  openTransport,
  parsePcrSelection,
  pcrExtend,
  pcrRead,
  readEkCertificate,
  readEkCertificates,
  startup,
  TPM_ALG_ID,
  TPM_CC,
  TPM_HT,
  TPM_PT,
  TpmAnswerError,
  TpmClient,
  type TpmTransport,
} from '@rackseal/tpm2';
import { NV_P256_EK_CERT, NV_P384_EK_CERT, NV_RSA_EK_CERT, type SwtpmMachine, useSwtpms } from './support/swtpm';
import { tpm2 } from './support/tpm2-tools';

jest.setTimeout(60_000);

const hex32 = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

/** Counts the commands a client sends, by command code; optionally acts after a response. */
class ObservingTransport implements TpmTransport {
  readonly sent: number[] = [];

  constructor(
    private readonly inner: TpmTransport,
    private readonly afterResponse?: (code: number, index: number) => Promise<void>,
  ) {}

  get description(): string {
    return this.inner.description;
  }

  count(code: number): number {
    return this.sent.filter((c) => c === code).length;
  }

  async transmit(command: Buffer): Promise<Buffer> {
    const code = command.readUInt32BE(6);
    this.sent.push(code);
    const response = await this.inner.transmit(command);
    await this.afterResponse?.(code, this.count(code));
    return response;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

async function withClient<T>(machine: SwtpmMachine, use: (client: TpmClient, transport: ObservingTransport) => Promise<T>, afterResponse?: (code: number, index: number) => Promise<void>): Promise<T> {
  const inner = await openTransport(machine.device);
  const transport = new ObservingTransport(inner, afterResponse && ((code, index) => afterResponse(code, index)));
  const client = new TpmClient(transport);
  try {
    return await use(client, transport);
  } finally {
    await client.close();
  }
}

/** `NAME:\n  raw: 0x…` pairs from tpm2_getcap properties-fixed (YAML), keyed by TPM2_PT_… name. */
function parseGetcapProperties(yaml: string): Map<string, number> {
  const result = new Map<string, number>();
  for (const match of yaml.matchAll(/^(TPM2_PT_\w+):\n\s+raw: (0x[0-9A-Fa-f]+|\d+)$/gm)) {
    result.set(match[1]!, Number(match[2]!));
  }
  return result;
}

function parseHandleList(yaml: string): number[] {
  return [...yaml.matchAll(/^- (0x[0-9A-Fa-f]+)$/gm)].map((m) => Number(m[1]!));
}

/** swtpm ctrl channel CMD_INIT (2): _TPM_Init, after which the TPM needs TPM2_Startup. */
function ctrlInit(machine: SwtpmMachine): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: machine.host, port: machine.ctrlPort });
    socket.setTimeout(5000, () => socket.destroy(new Error('ctrl CMD_INIT: no answer')));
    socket.once('connect', () => socket.write(Buffer.from('0000000200000000', 'hex')));
    socket.once('data', (data) => {
      socket.destroy();
      if (data.length >= 4 && data.readUInt32BE(0) === 0) {
        resolve();
      } else {
        reject(new Error(`ctrl CMD_INIT answered ${data.toString('hex')}`));
      }
    });
    socket.once('error', reject);
  });
}

describe('TPM command client, platform commands, against swtpm', () => {
  const fixture = useSwtpms(1, { p256: true, pcrBanks: ['sha1', 'sha256'] });
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rackseal-platform-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe('TPM2_GetCapability', () => {
    it('reads every fixed property as tpm2_getcap properties-fixed does; manufacturer IBM, firmware 2019-10-23', async () => {
      const tpm = fixture.at(0);
      const ours = await withClient(tpm, (client) => getTpmProperties(client, TPM_PT.TPM_PT_FAMILY_INDICATOR, 256));
      const tool = parseGetcapProperties((await tpm2(tpm, 'getcap', 'properties-fixed')).stdout.toString('utf8'));
      expect(tool.size).toBeGreaterThan(40);
      const byName = new Map(ours.map((p) => [Object.entries(TPM_PT).find(([, v]) => v === p.property)?.[0], p.value]));
      for (const [name, raw] of tool) {
        expect([name, byName.get(name.replace(/^TPM2_PT_/, 'TPM_PT_'))]).toEqual([name, raw]);
      }
      // Only fixed (0x100-group) properties come back, ascending.
      expect(ours.every((p, i) => p.property >> 8 === 1 && (i === 0 || p.property > ours[i - 1]!.property))).toBe(true);

      const manufacturer = byName.get('TPM_PT_MANUFACTURER')!;
      expect(Buffer.from([manufacturer >>> 24, (manufacturer >> 16) & 0xff, (manufacturer >> 8) & 0xff, manufacturer & 0xff]).toString('latin1').replace(/\0+$/, '')).toBe('IBM');
      expect(byName.get('TPM_PT_FIRMWARE_VERSION_1')).toBe(0x20191023);
    });

    it('getTpmProperty answers one property and names one the TPM does not report', async () => {
      const tpm = fixture.at(0);
      await withClient(tpm, async (client) => {
        expect(await getTpmProperty(client, TPM_PT.TPM_PT_NV_BUFFER_MAX)).toBe(0x400);
        expect(await getTpmProperty(client, TPM_PT.TPM_PT_PCR_COUNT)).toBe(24);
        // 0x115 is a hole in the PT_FIXED table: the TPM answers the next property instead.
        await expect(getTpmProperty(client, 0x115)).rejects.toThrow(new TpmAnswerError('TPM2_GetCapability', 'the TPM does not report TPM_PT 0x115'));
      });
    });

    it('reports the allocated PCR banks (sha1, sha256; not the unallocated sha384/sha512) as tpm2_getcap pcrs', async () => {
      const tpm = fixture.at(0);
      const banks = await withClient(tpm, (client) => getPcrBanks(client));
      const all = Array.from({ length: 24 }, (_, i) => i);
      expect(banks.map((b) => [hashAlgorithm(b.hash).bank, b.pcrs])).toEqual([['sha1', all], ['sha256', all]]);
      const tool = (await tpm2(tpm, 'getcap', 'pcrs')).stdout.toString('utf8');
      const allocated = [...tool.matchAll(/^\s+- (\w+): \[ ([\d, ]+) \]$/gm)].map((m) => [m[1], m[2]!.split(',').map((s) => Number(s.trim()))]);
      expect(allocated).toEqual([['sha1', all], ['sha256', all]]);
    });

    it('lists NV, persistent and transient handles as tpm2_getcap handles-* does', async () => {
      const tpm = fixture.at(0);
      const [nv, persistent, transient] = await withClient(tpm, (client) =>
        Promise.all([getHandles(client, TPM_HT.TPM_HT_NV_INDEX), getHandles(client, TPM_HT.TPM_HT_PERSISTENT), getHandles(client, TPM_HT.TPM_HT_TRANSIENT)]),
      );
      expect(nv).toEqual(parseHandleList((await tpm2(tpm, 'getcap', 'handles-nv-index')).stdout.toString('utf8')));
      expect(nv).toEqual(expect.arrayContaining([NV_RSA_EK_CERT, NV_P256_EK_CERT, NV_P384_EK_CERT]));
      expect(persistent).toEqual(parseHandleList((await tpm2(tpm, 'getcap', 'handles-persistent')).stdout.toString('utf8')));
      expect(persistent).toEqual([0x81010001, 0x81010016]);
      expect(transient).toEqual([]);
    });
  });

  describe('NV_ReadPublic and NV_Read', () => {
    const CERTS = [
      { label: 'RSA-2048', nvIndex: NV_RSA_EK_CERT, file: (m: SwtpmMachine) => m.rsaEkCertDer() },
      { label: 'ECC P-256', nvIndex: NV_P256_EK_CERT, file: (m: SwtpmMachine) => m.p256EkCertDer() },
      { label: 'ECC P-384', nvIndex: NV_P384_EK_CERT, file: (m: SwtpmMachine) => m.eccEkCertDer() },
    ];

    it.each(CERTS)('$label EK certificate index: public area and Name as tpm2_nvreadpublic; content as tpm2_nvread and the cert file', async ({ nvIndex, file }) => {
      const tpm = fixture.at(0);
      const { pub, content } = await withClient(tpm, async (client) => ({ pub: await nvReadPublic(client, nvIndex), content: await nvReadAll(client, nvIndex) }));
      const tool = (await tpm2(tpm, 'nvreadpublic', hex32(nvIndex))).stdout.toString('utf8');
      expect(pub.name.toString('hex')).toBe(/name: ([0-9a-f]+)/.exec(tool)![1]);
      expect(pub.nvPublic.nvIndex).toBe(nvIndex);
      expect(pub.nvPublic.nameAlg).toBe(Number(/hash algorithm:\n\s+friendly: \w+\n\s+value: (0x[0-9A-F]+)/.exec(tool)![1]));
      expect(pub.nvPublic.attributes).toBe(Number(/attributes:\n\s+friendly: \S+\n\s+value: (0x[0-9A-F]+)/.exec(tool)![1]));
      expect(pub.nvPublic.dataSize).toBe(Number(/size: (\d+)/.exec(tool)![1]));
      // The Name is nameAlg ‖ H(TPMS_NV_PUBLIC) (Part 1 §16): `raw` is exactly what the TPM hashed.
      expect(pub.name.subarray(2)).toEqual(createHash('sha256').update(pub.nvPublic.raw).digest());

      const out = join(dir, `nv-${nvIndex.toString(16)}.bin`);
      await tpm2(tpm, 'nvread', hex32(nvIndex), '-C', hex32(nvIndex), '-o', out);
      expect(content).toEqual(await readFile(out));
      expect(content).toEqual(await file(tpm));
      // swtpm's certificates (842-1016 bytes) fit one NV_BUFFER_MAX chunk; chunking is proven below.
    });

    it('readEkCertificates finds the three EK certificates swtpm holds, unchanged (no quirks)', async () => {
      const tpm = fixture.at(0);
      const certs = await withClient(tpm, (client) => readEkCertificates(client));
      expect(certs.map((c) => [hex32(c.nvIndex), c.keyType, unwrapCertificate(c.nvData).quirks])).toEqual([
        ['0x01c00002', 'rsa-2048', []],
        ['0x01c0000a', 'ecc-p256', []],
        ['0x01c00016', 'ecc-p384', []],
      ]);
      expect(certs[0]!.nvData).toEqual(await tpm.rsaEkCertDer());
      expect(certs[1]!.nvData).toEqual(await tpm.p256EkCertDer());
      expect(certs[2]!.nvData).toEqual(await tpm.eccEkCertDer());
    });

    it('reads a TCG NV header and 0xFF padding (ST33 style, 1600 bytes) and trailing padding up to TPM_PT_NV_INDEX_MAX whole, in NV_BUFFER_MAX chunks', async () => {
      const tpm = fixture.at(0);
      const der = await tpm.rsaEkCertDer();
      const maxIndex = await withClient(tpm, (client) => getTpmProperty(client, TPM_PT.TPM_PT_NV_INDEX_MAX));
      expect(maxIndex).toBe(2048); // swtpm: an index larger than this is TPM_RC_NV_SIZE

      const header = Buffer.from([0x10, 0x01, 0x00, der.length >> 8, der.length & 0xff]);
      const withHeader = Buffer.concat([header, der, Buffer.alloc(1600 - header.length - der.length, 0xff)]);
      const padded = Buffer.concat([der, Buffer.alloc(maxIndex - der.length, 0xff)]);
      const cases = [
        { nvIndex: 0x01000123, content: withHeader, quirks: ['nv-header', 'trailing-padding'] },
        { nvIndex: 0x01000124, content: padded, quirks: ['trailing-padding'] },
      ];
      for (const { nvIndex, content } of cases) {
        const file = join(dir, `quirk-${nvIndex.toString(16)}.bin`);
        await writeFile(file, content);
        await tpm2(tpm, 'nvdefine', hex32(nvIndex), '-C', 'o', '-s', String(content.length), '-a', 'ownerwrite|ownerread|authwrite|authread|no_da');
        await tpm2(tpm, 'nvwrite', hex32(nvIndex), '-C', 'o', '-i', file);
      }
      try {
        await withClient(tpm, async (client, transport) => {
          for (const { nvIndex, content, quirks } of cases) {
            const before = transport.count(TPM_CC.TPM_CC_NV_Read);
            const cert = await readEkCertificate(client, { nvIndex, keyType: 'rsa-2048' });
            expect(cert.nvData).toEqual(content);
            // The index is returned whole; ek-trust's unwrapping (the one the server uses) finds the certificate.
            expect(unwrapCertificate(cert.nvData)).toMatchObject({ der, quirks });
            expect(transport.count(TPM_CC.TPM_CC_NV_Read) - before).toBe(Math.ceil(content.length / 0x400));
          }
        });
      } finally {
        for (const { nvIndex } of cases) {
          await tpm2(tpm, 'nvundefine', hex32(nvIndex), '-C', 'o');
        }
      }
    });
  });

  describe('PCR_Read and PCR_Extend', () => {
    const ALL = Array.from({ length: 24 }, (_, i) => i).join(',');

    it('reads 48 PCRs across two banks (6 rounds of at most 8) exactly as tpm2_pcrread -o writes them', async () => {
      const tpm = fixture.at(0);
      for (const [index, bank] of [[0, 'sha1'], [7, 'sha256'], [9, 'sha1'], [14, 'sha256'], [23, 'sha256']] as const) {
        await tpm.extendPcr(index, bank, randomBytes(bank === 'sha1' ? 20 : 32).toString('hex'));
      }
      for (const text of [`sha1:${ALL}+sha256:${ALL}`, 'sha256:23,16,14,9,7,3,2,1,0+sha1:9,7,0']) {
        const selection = parsePcrSelection(text);
        const { values, rounds } = await withClient(tpm, async (client, transport) => ({
          values: (await pcrRead(client, selection)).values,
          rounds: transport.count(TPM_CC.TPM_CC_PCR_Read),
        }));
        const out = join(dir, 'pcrs.bin');
        await tpm2(tpm, 'pcrread', text, '-o', out);
        expect(Buffer.concat(values).toString('hex')).toBe((await readFile(out)).toString('hex'));
        const count = selection.reduce((n, b) => n + b.pcrs.length, 0);
        expect(values).toHaveLength(count);
        expect(rounds).toBe(Math.ceil(count / 8));
      }
    });

    it('starts over when pcrUpdateCounter changes between rounds, so values never mix two PCR states', async () => {
      const tpm = fixture.at(0);
      const selection = parsePcrSelection(`sha1:${ALL}+sha256:${ALL}`);
      const extension = randomBytes(32);
      let client: TpmClient | undefined;
      let injected = false;
      const result = await withClient(
        tpm,
        async (c, transport) => {
          client = c;
          const before = await pcrRead(c, selection);
          const during = await pcrRead(c, selection);
          return { before, during, rounds: transport.count(TPM_CC.TPM_CC_PCR_Read) };
        },
        async (code, index) => {
          // After the 7th PCR_Read (round 1 of the second pcrRead), PCR 10 changes under it.
          if (code === TPM_CC.TPM_CC_PCR_Read && index === 7 && !injected) {
            injected = true;
            await pcrExtend(client!, 10, [{ hashAlg: TPM_ALG_ID.TPM_ALG_SHA256, digest: extension }]);
          }
        },
      );
      expect(injected).toBe(true);
      // 6 rounds, then 1 round + 1 that saw the new counter + 6 again.
      expect(result.rounds).toBe(6 + 1 + 1 + 6);
      expect(result.during.updateCounter).toBeGreaterThan(result.before.updateCounter);
      const out = join(dir, 'pcrs-after.bin');
      await tpm2(tpm, 'pcrread', `sha1:${ALL}+sha256:${ALL}`, '-o', out);
      expect(Buffer.concat(result.during.values).toString('hex')).toBe((await readFile(out)).toString('hex'));
      expect(result.during.values[24 + 10]).not.toEqual(result.before.values[24 + 10]);
    });

    it('pcrExtend does what tpm2_pcrextend does (PCR = H(PCR ‖ digest) per bank)', async () => {
      const tpm = fixture.at(0);
      const sha1 = randomBytes(20);
      const sha256 = randomBytes(32);
      const selection = parsePcrSelection('sha1:12,13+sha256:12,13');
      const before = await withClient(tpm, async (client) => {
        const values = (await pcrRead(client, selection)).values;
        await pcrExtend(client, 12, [
          { hashAlg: TPM_ALG_ID.TPM_ALG_SHA1, digest: sha1 },
          { hashAlg: TPM_ALG_ID.TPM_ALG_SHA256, digest: sha256 },
        ]);
        return values;
      });
      await tpm.extendPcr(13, 'sha1', sha1.toString('hex'));
      await tpm.extendPcr(13, 'sha256', sha256.toString('hex'));
      const [s1p12, s1p13, s256p12, s256p13] = await withClient(tpm, async (client) => (await pcrRead(client, selection)).values);
      // 12 and 13 both start at zero after the TPM's Startup(CLEAR).
      expect(before[0]).toEqual(before[1]);
      expect(s1p12).toEqual(s1p13);
      expect(s256p12).toEqual(s256p13);
      expect(s1p12).toEqual(createHash('sha1').update(before[0]!).update(sha1).digest());
      expect(s256p12).toEqual(createHash('sha256').update(before[2]!).update(sha256).digest());
      expect((await tpm.readPcr(12, 'sha256'))).toBe(s256p12!.toString('hex'));
    });

    it('refuses a digest of the wrong size before sending anything, and names PCRs of an unallocated bank', async () => {
      const tpm = fixture.at(0);
      await withClient(tpm, async (client, transport) => {
        await expect(pcrExtend(client, 12, [{ hashAlg: TPM_ALG_ID.TPM_ALG_SHA256, digest: Buffer.alloc(20) }])).rejects.toThrow(RangeError);
        expect(transport.sent).toEqual([]);
        await expect(pcrRead(client, parsePcrSelection('sha256:0+sha384:0,7'))).rejects.toThrow(
          new TpmAnswerError('TPM2_PCR_Read', 'the TPM returned no value for sha384:0,7 (bank not allocated, or no such PCR?)'),
        );
      });
    });
  });

  describe('TPM2_Startup and TPM2_GetRandom', () => {
    it('Startup(CLEAR) on a started TPM is "already started"; after _TPM_Init it starts it and PCRs are reset', async () => {
      const tpm = fixture.at(0);
      expect(await withClient(tpm, (client) => startup(client))).toBe(false);
      await tpm.extendPcr(5, 'sha256', 'ab'.repeat(32));
      await ctrlInit(tpm);
      await withClient(tpm, async (client) => {
        // Before Startup every command but Startup is refused with TPM_RC_INITIALIZE.
        await expect(getRandom(client, 8)).rejects.toMatchObject({ name: 'TpmError', rc: { name: 'TPM_RC_INITIALIZE' } });
        expect(await startup(client, 'clear')).toBe(true);
        expect(await startup(client, 'clear')).toBe(false);
        expect((await pcrRead(client, parsePcrSelection('sha256:5'))).values).toEqual([Buffer.alloc(32)]);
      });
    });

    it('returns exactly the size asked, looping by TPM_PT_MAX_DIGEST bytes per call', async () => {
      const tpm = fixture.at(0);
      await withClient(tpm, async (client, transport) => {
        const perCall = await getTpmProperty(client, TPM_PT.TPM_PT_MAX_DIGEST);
        expect(perCall).toBe(64);
        for (const size of [0, 1, 32, 63, 64, 65, 200, 4096]) {
          const before = transport.count(TPM_CC.TPM_CC_GetRandom);
          const bytes = await getRandom(client, size);
          expect(bytes).toHaveLength(size);
          expect(transport.count(TPM_CC.TPM_CC_GetRandom) - before).toBe(Math.ceil(size / perCall));
        }
        const [a, b] = [await getRandom(client, 32), await getRandom(client, 32)];
        expect(a).not.toEqual(b);
        expect(a).not.toEqual(Buffer.alloc(32));
        await expect(getRandom(client, -1)).rejects.toThrow(RangeError);
      });
    });
  });
});
