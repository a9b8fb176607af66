import { readFileSync } from 'node:fs';
import { digest, parseEventLog, TPM_ALG_ID } from '@rackseal/tpm2';
import { fixturePath } from '../../../test/support/fixtures';
import { evaluatePcrPolicy } from './evaluate';
import { parsePcrPolicy } from './parse-policy';
import type { PcrPolicy, QuotedPcrValues } from './pcr-policy';
import { promoteToSet, withSet } from './promote';
import { hexValues, quoteOf, withDigestChanged, withEventCopied, withoutEvent } from './testing/log-edits';

/**
 * Real firmware logs (test/fixtures/SOURCES.md): the canary booted Ubuntu 21.04 on a GCP Shielded VM;
 * the previous allowed set is a Fedora laptop's boot (keylime's log). Both carry sha256. In the
 * Ubuntu log, PCR 4 holds events #14 EV_EFI_ACTION, #19 EV_SEPARATOR, #23 shimx64.efi and #27
 * grubx64.efi; PCR 7 the Secure Boot variables #3–#7, separator #8 and #26 SbatLevel.
 */
const CANARY = readFileSync(fixturePath('eventlogs', 'ubuntu_2104_shielded_vm_no_secure_boot_eventlog'));
const PREVIOUS = readFileSync(fixturePath('eventlogs', 'keylime-binary_bios_measurements'));
const BANK = 'sha256';
const PCRS = [0, 4, 7];
const AT = new Date('2026-12-01T09:30:00.000Z');
const GRUB = '\\EFI\\ubuntu\\grubx64.efi';
const SHIM = '\\EFI\\ubuntu\\shimx64.efi';

function policy(mode: 'enforce' | 'warn' = 'enforce'): PcrPolicy {
  const base = { bank: BANK, pcrs: PCRS, mode };
  const previous = promoteToSet(base, 'fedora-previous', 'laptop-7', quoteOf(PREVIOUS, BANK, PCRS), PREVIOUS, AT);
  const current = promoteToSet(base, 'ubuntu-current', 'canary-01', quoteOf(CANARY, BANK, PCRS), CANARY, AT);
  return withSet(parsePcrPolicy({ ...base, allowedSets: [previous] }), current);
}

function sha256Of(log: Buffer, index: number): string {
  return parseEventLog(log).events[index]!.digests.find((d) => d.hashAlg === TPM_ALG_ID.TPM_ALG_SHA256)!.digest.toString('hex');
}

/** `hex` with its first byte XORed with 0xff, as withDigestChanged does. */
function flipped(hex: string): string {
  const bytes = Buffer.from(hex, 'hex');
  bytes[0] = bytes[0]! ^ 0xff;
  return bytes.toString('hex');
}

describe('evaluatePcrPolicy', () => {
  it('matches the second allowed set, naming it', () => {
    const verdict = evaluatePcrPolicy(policy(), quoteOf(CANARY, BANK, PCRS), { eventLog: CANARY });
    expect(verdict).toEqual({ decision: 'match', matchedSet: 'ubuntu-current', enforced: true, mismatches: [], explanation: [], summary: [] });
    expect(evaluatePcrPolicy(policy(), quoteOf(PREVIOUS, BANK, PCRS)).matchedSet).toBe('fedora-previous');
  });

  it('names the event whose digest differs from the canary log: index, type, PCR, both digests and the image path', () => {
    const machine = withDigestChanged(CANARY, 27, BANK);
    const quoted = quoteOf(machine, BANK, PCRS);
    const verdict = evaluatePcrPolicy(policy(), quoted, { eventLog: machine });
    const expectedPcr4 = hexValues(quoteOf(CANARY, BANK, PCRS))[4]!;
    expect(verdict.decision).toBe('mismatch');
    expect(verdict.enforced).toBe(true);
    expect(verdict.closestSet).toBe('ubuntu-current');
    expect(verdict.mismatches).toEqual([
      {
        pcr: 4,
        reason: 'differs',
        actual: quoted.values.get(4)!.toString('hex'),
        expected: [
          { set: 'fedora-previous', value: hexValues(quoteOf(PREVIOUS, BANK, PCRS))[4] },
          { set: 'ubuntu-current', value: expectedPcr4 },
        ],
      },
    ]);
    expect(verdict.explanation).toEqual([
      {
        kind: 'digest-differs',
        pcr: 4,
        eventIndex: 27,
        referenceEventIndex: 27,
        eventType: 'EV_EFI_BOOT_SERVICES_APPLICATION',
        referenceDigest: sha256Of(CANARY, 27),
        actualDigest: flipped(sha256Of(CANARY, 27)),
        description: GRUB,
        summary: `PCR 4: event #27 EV_EFI_BOOT_SERVICES_APPLICATION digest differs (${GRUB})`,
      },
    ]);
    expect(verdict.summary).toEqual([
      `PCR 4: quoted ${quoted.values.get(4)!.toString('hex')}, set "ubuntu-current" has ${expectedPcr4}`,
      `PCR 4: event #27 EV_EFI_BOOT_SERVICES_APPLICATION digest differs (${GRUB})`,
    ]);
  });

  it('explains each differing PCR in ascending order, a variable by its name', () => {
    const machine = withDigestChanged(withDigestChanged(CANARY, 27, BANK), 5, BANK);
    const verdict = evaluatePcrPolicy(policy(), quoteOf(machine, BANK, PCRS), { eventLog: machine });
    expect(verdict.mismatches.map((m) => m.pcr)).toEqual([4, 7]);
    expect(verdict.explanation.map((e) => e.summary)).toEqual([
      `PCR 4: event #27 EV_EFI_BOOT_SERVICES_APPLICATION digest differs (${GRUB})`,
      'PCR 7: event #5 EV_EFI_VARIABLE_DRIVER_CONFIG digest differs (KEK)',
    ]);
  });

  it('names an extra event in the machine log', () => {
    // A second "Calling EFI Application from Boot Option" after shim: event #24 of the machine's log.
    const machine = withEventCopied(CANARY, 14, 23);
    const verdict = evaluatePcrPolicy(policy(), quoteOf(machine, BANK, PCRS), { eventLog: machine });
    expect(verdict.explanation).toEqual([
      {
        kind: 'extra-event',
        pcr: 4,
        eventIndex: 24,
        referenceEventIndex: undefined,
        eventType: 'EV_EFI_ACTION',
        referenceDigest: undefined,
        actualDigest: sha256Of(CANARY, 14),
        description: 'Calling EFI Application from Boot Option',
        summary: "PCR 4: event #24 EV_EFI_ACTION is extra, not in canary-01's log (Calling EFI Application from Boot Option)",
      },
    ]);
  });

  it("names an event of the canary's log missing from the machine log", () => {
    const machine = withoutEvent(CANARY, 23);
    const verdict = evaluatePcrPolicy(policy(), quoteOf(machine, BANK, PCRS), { eventLog: machine });
    expect(verdict.explanation).toEqual([
      {
        kind: 'missing-event',
        pcr: 4,
        eventIndex: undefined,
        referenceEventIndex: 23,
        eventType: 'EV_EFI_BOOT_SERVICES_APPLICATION',
        referenceDigest: sha256Of(CANARY, 23),
        actualDigest: undefined,
        description: SHIM,
        summary: `PCR 4: canary-01's event #23 EV_EFI_BOOT_SERVICES_APPLICATION is missing (${SHIM})`,
      },
    ]);
  });

  it('reports events after the end of the shorter log as extra', () => {
    const machine = withEventCopied(CANARY, 27, 27);
    const verdict = evaluatePcrPolicy(policy(), quoteOf(machine, BANK, PCRS), { eventLog: machine });
    expect(verdict.explanation.map((e) => e.summary)).toEqual([`PCR 4: event #28 EV_EFI_BOOT_SERVICES_APPLICATION is extra, not in canary-01's log (${GRUB})`]);
  });

  it('says the machine log cannot be trusted when it does not replay to the quote (a PCR extended after boot, or an edited log)', () => {
    // The TPM measured the changed grub; the machine sends the canary's log to hide it.
    const booted = withDigestChanged(CANARY, 27, BANK);
    const verdict = evaluatePcrPolicy(policy(), quoteOf(booted, BANK, PCRS), { eventLog: CANARY });
    expect(verdict.explanation).toHaveLength(1);
    expect(verdict.explanation[0]).toMatchObject({
      kind: 'log-untrusted',
      log: 'machine',
      pcr: 4,
      summary: "PCR 4: the machine's event log does not replay to the quoted value; it cannot be trusted to say which event differs",
    });
    expect(verdict.explanation[0]).toHaveProperty('detail', expect.stringMatching(/^sha256 PCR 4: the log replays to [0-9a-f]{64}, the quote says [0-9a-f]{64}; no prefix/));

    // PCR 4 extended once more after the log was read (as swtpm's PCR_Extend does).
    const canaryQuote = quoteOf(CANARY, BANK, PCRS);
    const extended = new Map(canaryQuote.values);
    extended.set(4, digest(TPM_ALG_ID.TPM_ALG_SHA256, canaryQuote.values.get(4)!, Buffer.alloc(32, 0x42)));
    const after = evaluatePcrPolicy(policy(), { bank: BANK, values: extended }, { eventLog: CANARY });
    expect(after.explanation.map((e) => e.kind)).toEqual(['log-untrusted']);
  });

  it("says the canary's log is no reference when it does not replay to the set's values", () => {
    const base = parsePcrPolicy({
      bank: BANK,
      pcrs: PCRS,
      mode: 'enforce',
      allowedSets: [
        {
          label: 'mislabelled',
          values: hexValues(quoteOf(CANARY, BANK, PCRS)),
          promotedFrom: { machine: 'laptop-7', at: AT.toISOString(), eventLog: PREVIOUS.toString('base64') },
        },
      ],
    });
    const machine = withDigestChanged(CANARY, 27, BANK);
    const verdict = evaluatePcrPolicy(base, quoteOf(machine, BANK, PCRS), { eventLog: machine });
    expect(verdict.explanation.map((e) => e.summary)).toEqual([`PCR 4: laptop-7's event log does not replay to set "mislabelled"; it cannot say which event differs`]);
  });

  it('bounds the events reported per PCR', () => {
    let machine: Buffer = CANARY;
    for (const index of [3, 4, 5, 6, 7]) {
      machine = withDigestChanged(machine, index, BANK);
    }
    const verdict = evaluatePcrPolicy(policy(), quoteOf(machine, BANK, PCRS), { eventLog: machine, maxEventsPerPcr: 2 });
    expect(verdict.explanation.map((e) => e.summary)).toEqual([
      'PCR 7: event #3 EV_EFI_VARIABLE_DRIVER_CONFIG digest differs (SecureBoot)',
      'PCR 7: event #4 EV_EFI_VARIABLE_DRIVER_CONFIG digest differs (PK)',
      'PCR 7: further divergences not listed (at most 2 per PCR)',
    ]);
    expect(evaluatePcrPolicy(policy(), quoteOf(machine, BANK, PCRS), { eventLog: machine }).explanation).toHaveLength(5);
    expect(() => evaluatePcrPolicy(policy(), quoteOf(machine, BANK, PCRS), { maxEventsPerPcr: 0 })).toThrow(new RangeError('maxEventsPerPcr must be a positive integer, not 0'));
  });

  it('in warn mode reports the same mismatch, not enforced', () => {
    const machine = withDigestChanged(CANARY, 27, BANK);
    const verdict = evaluatePcrPolicy(policy('warn'), quoteOf(machine, BANK, PCRS), { eventLog: machine });
    expect(verdict.decision).toBe('mismatch');
    expect(verdict.enforced).toBe(false);
    expect(verdict.explanation.map((e) => e.summary)).toEqual([`PCR 4: event #27 EV_EFI_BOOT_SERVICES_APPLICATION digest differs (${GRUB})`]);
  });

  it('explains against the set with the fewest differing PCRs, the first on a tie', () => {
    const canary = hexValues(quoteOf(CANARY, BANK, PCRS));
    const other = hexValues(quoteOf(PREVIOUS, BANK, PCRS));
    const sets = (first: Record<number, string>, second: Record<number, string>) =>
      parsePcrPolicy({ bank: BANK, pcrs: PCRS, mode: 'enforce', allowedSets: [{ label: 'a', values: first }, { label: 'b', values: second }] });
    const machine = quoteOf(withDigestChanged(CANARY, 27, BANK), BANK, PCRS);
    expect(evaluatePcrPolicy(sets(other, canary), machine).closestSet).toBe('b');
    expect(evaluatePcrPolicy(sets(canary, canary), machine).closestSet).toBe('a');
    // Two differing PCRs each (4 and 0, 4 and 7): a tie, the first wins.
    expect(evaluatePcrPolicy(sets({ ...canary, 0: other[0]! }, { ...canary, 7: other[7]! }), machine).closestSet).toBe('a');
    // Three (0, 4, 7) against two (0, 4).
    expect(evaluatePcrPolicy(sets({ ...other, 4: canary[4]! }, { ...canary, 0: other[0]! }), machine).closestSet).toBe('b');
  });

  it('says why there is no event-level explanation: no canary log, no machine log, a machine log that does not parse', () => {
    const machine = withDigestChanged(CANARY, 27, BANK);
    const quoted = quoteOf(machine, BANK, PCRS);
    const bare = parsePcrPolicy({ bank: BANK, pcrs: PCRS, mode: 'enforce', allowedSets: [{ label: 'typed-in', values: hexValues(quoteOf(CANARY, BANK, PCRS)) }] });
    expect(evaluatePcrPolicy(bare, quoted, { eventLog: machine })).toMatchObject({
      explanation: [],
      explanationNote: 'set "typed-in" was not promoted with a canary\'s event log: no event-level explanation',
    });
    expect(evaluatePcrPolicy(policy(), quoted)).toMatchObject({ explanation: [], explanationNote: 'no event log from the machine: no event-level explanation' });
    const bogus = readFileSync(fixturePath('eventlogs', 'keylime-binary_bios_measurements-bogus'));
    const verdict = evaluatePcrPolicy(policy(), quoted, { eventLog: bogus });
    expect(verdict.explanation).toHaveLength(1);
    expect(verdict.explanation[0]).toMatchObject({ kind: 'log-untrusted', log: 'machine', pcr: undefined });
    expect(verdict.explanation[0]!.summary).toMatch(/^the machine's event log does not parse \(TCG_PCR_EVENT.*\); it cannot say which event differs$/);
  });

  it('a quote lacking a PCR of the policy, or of another bank, is a mismatch naming that', () => {
    const full = quoteOf(CANARY, BANK, PCRS);
    const values = new Map(full.values);
    values.delete(7);
    const lacking = evaluatePcrPolicy(policy(), { bank: BANK, values }, { eventLog: CANARY });
    expect(lacking).toMatchObject({
      decision: 'mismatch',
      closestSet: 'ubuntu-current',
      mismatches: [{ pcr: 7, reason: 'not-quoted', actual: undefined }],
      explanation: [],
      summary: ['PCR 7: not in the quote', 'no differing value to explain: the quote lacks PCRs of the policy'],
    });

    const sha1: QuotedPcrValues = quoteOf(CANARY, 'sha1', PCRS);
    const other = evaluatePcrPolicy(policy(), sha1, { eventLog: CANARY });
    expect(other.decision).toBe('mismatch');
    expect(other.mismatches.map((m) => [m.pcr, m.reason, m.actual])).toEqual([
      [0, 'other-bank', undefined],
      [4, 'other-bank', undefined],
      [7, 'other-bank', undefined],
    ]);
    expect(other.summary).toEqual(["the quote is of the sha1 bank, the policy's is sha256: no PCR of the policy is quoted"]);
  });

  it('ignores quoted PCRs the policy does not list', () => {
    const quoted = quoteOf(CANARY, BANK, [...PCRS, 1, 2]);
    expect(evaluatePcrPolicy(policy(), quoted).decision).toBe('match');
  });
});
