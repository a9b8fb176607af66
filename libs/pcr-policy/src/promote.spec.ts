import { readFileSync } from 'node:fs';
import { fixturePath } from '../../../test/support/fixtures';
import { parsePcrPolicy } from './parse-policy';
import { PcrPolicyError } from './pcr-policy-error';
import { MAX_EVENT_LOG_BYTES, type PcrPolicy } from './pcr-policy';
import { promoteToSet, withSet } from './promote';
import { hexValues, quoteOf } from './testing/log-edits';

const CANARY = readFileSync(fixturePath('eventlogs', 'ubuntu_2104_shielded_vm_no_secure_boot_eventlog'));
const SHA256_ONLY = readFileSync(fixturePath('eventlogs', 'crypto_agile_eventlog'));
const BASE = { bank: 'sha256', pcrs: [0, 4, 7] };
const AT = new Date('2026-12-01T09:30:00.000Z');
const QUOTE = quoteOf(CANARY, 'sha256', [0, 1, 4, 7]);

function policyWith(count: number): PcrPolicy {
  const values = hexValues(quoteOf(CANARY, 'sha256', BASE.pcrs));
  return parsePcrPolicy({ ...BASE, mode: 'enforce', allowedSets: Array.from({ length: count }, (_, i) => ({ label: `set ${i}`, values })) });
}

function refusal(run: () => unknown): PcrPolicyError {
  try {
    run();
  } catch (error) {
    if (error instanceof PcrPolicyError) {
      return error;
    }
    throw error;
  }
  throw new Error('accepted');
}

describe('promoteToSet', () => {
  it("takes the canary's values of the policy's PCRs (no other), the time and its log as base64", () => {
    const set = promoteToSet(BASE, 'ubuntu 21.04', 'canary-01', QUOTE, CANARY, AT);
    expect(set).toEqual({
      label: 'ubuntu 21.04',
      values: hexValues(quoteOf(CANARY, 'sha256', [0, 4, 7])),
      promotedFrom: { machine: 'canary-01', at: '2026-12-01T09:30:00.000Z', eventLog: CANARY.toString('base64') },
    });
    expect(Buffer.from(set.promotedFrom!.eventLog!, 'base64').equals(CANARY)).toBe(true);
    expect(promoteToSet(BASE, 'no log', 'canary-01', QUOTE, undefined, AT).promotedFrom).toEqual({ machine: 'canary-01', at: '2026-12-01T09:30:00.000Z' });
  });

  it.each<[string, () => unknown, string, string]>([
    ['a quote of another bank', () => promoteToSet(BASE, 'x', 'canary-01', quoteOf(CANARY, 'sha1', [0, 4, 7]), undefined, AT), 'quoted.bank', "the canary's quote is of the sha1 bank, the policy's is sha256"],
    ['a quote lacking a PCR', () => promoteToSet(BASE, 'x', 'canary-01', quoteOf(CANARY, 'sha256', [0, 4]), undefined, AT), 'quoted.values.7', "the canary's quote has no value for PCR 7 of the policy"],
    [
      'a value of the wrong size',
      () => promoteToSet(BASE, 'x', 'canary-01', { bank: 'sha256', values: new Map([...QUOTE.values].map(([p, v]) => [p, p === 4 ? v.subarray(0, 20) : v])) }, undefined, AT),
      'quoted.values.4',
      'a sha256 digest is 64 hex digits, not 40',
    ],
    ['an empty label', () => promoteToSet(BASE, '', 'canary-01', QUOTE, undefined, AT), 'label', 'must be 1–64 characters, not 0'],
    ['a canary name with an escape', () => promoteToSet(BASE, 'x', 'canary\u001b', QUOTE, undefined, AT), 'promotedFrom.machine', 'must be printable (U+001B at index 6)'],
    ['an invalid date', () => promoteToSet(BASE, 'x', 'canary-01', QUOTE, undefined, new Date('nope')), 'promotedFrom.at', 'is not a valid date'],
    ['a log over 1 MiB', () => promoteToSet(BASE, 'x', 'canary-01', QUOTE, Buffer.concat([CANARY, Buffer.alloc(MAX_EVENT_LOG_BYTES)]), AT), 'promotedFrom.eventLog', `the event log is ${CANARY.length + MAX_EVENT_LOG_BYTES} bytes, more than 1048576`],
    ['a log that does not parse', () => promoteToSet(BASE, 'x', 'canary-01', QUOTE, CANARY.subarray(0, 100), AT), 'promotedFrom.eventLog', 'the event log does not parse: TCG_PCR_EVENT2[1].digests[0].digest at offset 87: needs 20 byte(s), 13 left'],
    ['a log without the bank', () => promoteToSet({ ...BASE, bank: 'sha1' }, 'x', 'canary-01', quoteOf(CANARY, 'sha1', [0, 4, 7]), SHA256_ONLY, AT), 'promotedFrom.eventLog', 'the event log carries no sha1 digests'],
  ])('refuses %s', (_name, run, field, reason) => {
    expect(refusal(run)).toMatchObject({ field, reason });
  });
});

describe('withSet', () => {
  const promoted = promoteToSet(BASE, 'set 1', 'canary-01', quoteOf(CANARY, 'sha256', BASE.pcrs), CANARY, AT);

  it('replaces the set with the same label in place, or appends', () => {
    const replaced = withSet(policyWith(3), promoted);
    expect(replaced.allowedSets.map((s) => s.label)).toEqual(['set 0', 'set 1', 'set 2']);
    expect(replaced.allowedSets[1]).toEqual(promoted);
    const appended = withSet(policyWith(3), { ...promoted, label: 'new' });
    expect(appended.allowedSets.map((s) => s.label)).toEqual(['set 0', 'set 1', 'set 2', 'new']);
  });

  it('refuses a 17th set, but replaces one in a full policy', () => {
    expect(refusal(() => withSet(policyWith(16), { ...promoted, label: 'new' }))).toMatchObject({
      field: 'allowedSets',
      reason: 'already holds 16 sets, the most a policy has: remove one before adding "new"',
    });
    expect(withSet(policyWith(16), promoted).allowedSets).toHaveLength(16);
  });

  it("refuses a set that does not fit the policy's PCRs or bank", () => {
    const narrow = promoteToSet({ bank: 'sha256', pcrs: [0, 4] }, 'narrow', 'canary-01', QUOTE, undefined, AT);
    expect(refusal(() => withSet(policyWith(1), narrow))).toMatchObject({ field: 'allowedSets[1].values.7', reason: 'missing: every set gives a value for every PCR of the policy' });
    const sha1 = promoteToSet({ bank: 'sha1', pcrs: [0, 4, 7] }, 'sha1', 'canary-01', quoteOf(CANARY, 'sha1', [0, 4, 7]), undefined, AT);
    expect(refusal(() => withSet(policyWith(1), sha1))).toMatchObject({ field: 'allowedSets[1].values.0', reason: 'a sha256 digest is 64 hex digits, not 40' });
  });
});
