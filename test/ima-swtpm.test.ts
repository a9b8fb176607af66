/**
 * The TPM is the oracle for libs/ima's PCR 10 arithmetic: a synthetic measurement list (every
 * template: ima, ima-ng, ima-sig, ima-buf, and a violation) is extended into swtpm's PCR 10 in the
 * SHA-1 and SHA-256 banks with tpm2_pcrextend, entry by entry as IMA does; tpm2_pcrread's value must
 * be what the replay computes, and the attestation of that value must verify — then a list that
 * reaches further (incremental) and lists that do not reach it (tampered, reordered).
 */
import { createHash } from 'node:crypto';
import {
  attestImaMeasurements,
  buildImaEntry,
  entryExtend,
  type ImaBank,
  type ImaEntry,
  parseBinaryMeasurementList,
  parseRuntimePolicy,
  replayImaEntries,
  zeroPcr,
  marshalBinaryEntry,
} from '@rackseal/ima';
import { useSwtpms } from './support/swtpm';

const sha256 = (text: string) => createHash('sha256').update(text).digest();

function syntheticList(from: number, count: number): ImaEntry[] {
  return Array.from({ length: count }, (_, k) => {
    const i = from + k;
    if (i === 0) {
      return buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha256('boot'), name: 'boot_aggregate' }, i);
    }
    switch (i % 5) {
      case 1:
        return buildImaEntry({ template: 'ima', algorithm: 'sha1', digest: createHash('sha1').update(`legacy ${i}`).digest(), name: `/sbin/legacy-${i}` }, i);
      case 2:
        return buildImaEntry({ template: 'ima-sig', algorithm: 'sha256', digest: sha256(`signed ${i}`), name: `/usr/bin/signed-${i}`, signature: Buffer.alloc(0) }, i);
      case 3:
        return buildImaEntry({ template: 'ima-buf', algorithm: 'sha256', digest: sha256(`buf ${i}`), name: `kexec-cmdline-${i}`, buffer: Buffer.from(`buf ${i}`) }, i);
      default:
        return buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha256(`file ${i}`), name: `/usr/lib/lib-${i}.so` }, i);
    }
  });
}

describe('PCR 10 replay against swtpm (tpm2_pcrextend / tpm2_pcrread)', () => {
  const fixture = useSwtpms(1, { pcrBanks: ['sha1', 'sha256'] });
  const banks: ImaBank[] = ['sha1', 'sha256'];
  const first = syntheticList(0, 24);
  // A violation in the middle: the kernel extends all 0xFF for it.
  first.splice(11, 1, buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: Buffer.alloc(32), name: '/var/lib/db/open-for-write', violation: true }, 11));
  const more = syntheticList(24, 12);
  const all = [...first, ...more];
  const policy = parseRuntimePolicy({
    meta: { version: 1 },
    digests: Object.fromEntries(all.filter((e) => e.templateName !== 'ima-buf').map((e) => [e.path, [e.digest.digest.toString('hex')]])),
    'ima-buf': Object.fromEntries(all.filter((e) => e.templateName === 'ima-buf').map((e) => [e.path, [e.digest.digest.toString('hex')]])),
    excludes: ['/var/lib/db/'],
  });

  async function extendAll(entries: readonly ImaEntry[]): Promise<void> {
    const tpm = fixture.at(0);
    for (const entry of entries) {
      for (const bank of banks) {
        await tpm.extendPcr(10, bank, entryExtend(entry, { bank }).extend.toString('hex'));
      }
    }
  }

  it('PCR 10 starts at zero; after the list is extended, the TPM holds what the replay computes in both banks, and it attests', async () => {
    const tpm = fixture.at(0);
    for (const bank of banks) {
      expect(await tpm.readPcr(10, bank)).toBe(zeroPcr(bank).toString('hex'));
    }
    await extendAll(first);
    // The agent sends the binary list; the verifier parses it.
    const received = parseBinaryMeasurementList(Buffer.concat(first.map(marshalBinaryEntry)));
    for (const bank of banks) {
      const quoted = Buffer.from(await tpm.readPcr(10, bank), 'hex');
      expect(replayImaEntries(received, zeroPcr(bank), undefined, { bank }).final).toEqual(quoted);
      const result = attestImaMeasurements(undefined, { bank, bootTime: 'b1', startIndex: 0, entries: received, quotedPcr10: quoted }, policy);
      expect(result.outcome).toBe('failed');
      // The only failure is the violation, named: everything else is allowed and the list reaches the TPM's value.
      expect(result.coveredEntries).toBe(24);
      expect(result.failures.map((v) => [v.index, v.kind, v.path])).toEqual([[11, 'violation', '/var/lib/db/open-for-write']]);
    }
  });

  it('without the violation entry the list does not reach the TPM; incremental rounds check only the new entries', async () => {
    const tpm = fixture.at(0);
    const bank: ImaBank = 'sha256';
    const quoted = Buffer.from(await tpm.readPcr(10, bank), 'hex');
    const withoutViolation = first.filter((e) => !e.violation).map((e, i) => ({ ...e, index: i }));
    expect(attestImaMeasurements(undefined, { bank, bootTime: 'b1', startIndex: 0, entries: withoutViolation, quotedPcr10: quoted }, policy).reason).toMatch(/does not reach/);
    const reordered = [first[0]!, first[2]!, first[1]!, ...first.slice(3)].map((e, i) => ({ ...e, index: i }));
    expect(attestImaMeasurements(undefined, { bank, bootTime: 'b1', startIndex: 0, entries: reordered, quotedPcr10: quoted }, policy).reason).toMatch(/does not reach/);

    // Incremental: a first round verified the 11 entries before the violation (quoted at that value);
    // the next round sends only entries 11.. and the TPM's current value.
    const prefix = replayImaEntries(first.slice(0, 11), zeroPcr(bank), undefined, { bank }).final;
    const round1 = attestImaMeasurements(undefined, { bank, bootTime: 'b1', startIndex: 0, entries: first.slice(0, 11), quotedPcr10: prefix }, policy);
    expect(round1.outcome).toBe('verified');
    // The TPM has gone further (violation included): the window from 11 reaches it, and fails on the violation only.
    const round2 = attestImaMeasurements(round1.state, { bank, bootTime: 'b1', startIndex: 11, entries: first.slice(11), quotedPcr10: quoted }, policy);
    expect(round2.verdicts.map((v) => v.index)).toEqual(Array.from({ length: 13 }, (_, i) => 11 + i));
    expect(round2.failures.map((v) => v.kind)).toEqual(['violation']);
  });

  it('twelve more entries extended: a state at the TPM value continues with only them', async () => {
    const tpm = fixture.at(0);
    const bank: ImaBank = 'sha1';
    const before = Buffer.from(await tpm.readPcr(10, bank), 'hex');
    const state = { version: 1 as const, bank, bootTime: 'b1', nextEntry: 24, pcr10: before.toString('hex'), pendingEntries: 0, learnedKeys: [] };
    await extendAll(more);
    const after = Buffer.from(await tpm.readPcr(10, bank), 'hex');
    const window = parseBinaryMeasurementList(Buffer.concat(more.map(marshalBinaryEntry)), { firstIndex: 24 });
    const result = attestImaMeasurements(state, { bank, bootTime: 'b1', startIndex: 24, entries: window, quotedPcr10: after }, policy);
    expect(result.outcome).toBe('verified');
    expect(result.verdicts).toHaveLength(12);
    expect(result.state).toMatchObject({ nextEntry: 36, pcr10: after.toString('hex'), pendingEntries: 0 });
    // The same window claimed for another boot is a restart, not a pass.
    expect(attestImaMeasurements(state, { bank, bootTime: 'b2', startIndex: 24, entries: window, quotedPcr10: after }, policy).outcome).toBe('restart');
  });
});
