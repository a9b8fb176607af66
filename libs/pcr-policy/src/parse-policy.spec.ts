import { readFileSync } from 'node:fs';
import { fixturePath } from '../../../test/support/fixtures';
import { parsePcrPolicy } from './parse-policy';
import { PcrPolicyError } from './pcr-policy-error';
import { MAX_EVENT_LOG_BYTES } from './pcr-policy';

const D0 = 'a'.repeat(64);
const D4 = 'b'.repeat(64);
const CANARY_LOG = readFileSync(fixturePath('eventlogs', 'ubuntu_2104_shielded_vm_no_secure_boot_eventlog')).toString('base64');
const SHA256_ONLY_LOG = readFileSync(fixturePath('eventlogs', 'crypto_agile_eventlog')).toString('base64');

function valid(): Record<string, unknown> {
  return {
    bank: 'sha256',
    pcrs: [0, 4],
    mode: 'enforce',
    allowedSets: [
      { label: 'kernel 6.8', values: { 0: D0, 4: D4 } },
      { label: 'kernel 6.9', values: { 0: D0, 4: D0 }, promotedFrom: { machine: 'canary-01', at: '2026-12-01T09:30:00.000Z', eventLog: CANARY_LOG } },
    ],
  };
}

/** `valid()` with `edit` applied to the first set. */
function withSet0(edit: (set: Record<string, unknown>) => void): Record<string, unknown> {
  const policy = valid();
  edit((policy.allowedSets as Record<string, unknown>[])[0]!);
  return policy;
}

function withPromoted(edit: Record<string, unknown>): Record<string, unknown> {
  const policy = valid();
  const set = (policy.allowedSets as Record<string, unknown>[])[1]!;
  set.promotedFrom = { ...(set.promotedFrom as object), ...edit };
  return policy;
}

function refusal(json: unknown): PcrPolicyError {
  try {
    parsePcrPolicy(json);
  } catch (error) {
    if (error instanceof PcrPolicyError) {
      return error;
    }
    throw error;
  }
  throw new Error('the policy was accepted');
}

describe('parsePcrPolicy', () => {
  it('accepts a valid policy, returning a copy with lowercase hex that parses again to itself', () => {
    const json = withSet0((set) => (set.values = { 0: D0.toUpperCase(), 4: D4 }));
    const policy = parsePcrPolicy(json);
    expect(policy).toEqual({
      bank: 'sha256',
      pcrs: [0, 4],
      mode: 'enforce',
      allowedSets: [
        { label: 'kernel 6.8', values: { 0: D0, 4: D4 } },
        { label: 'kernel 6.9', values: { 0: D0, 4: D0 }, promotedFrom: { machine: 'canary-01', at: '2026-12-01T09:30:00.000Z', eventLog: CANARY_LOG } },
      ],
    });
    expect(policy.pcrs).not.toBe(json.pcrs);
    expect(parsePcrPolicy(JSON.parse(JSON.stringify(policy)))).toEqual(policy);
  });

  it('accepts 16 sets, a sha1 policy with 40-digit values and warn mode', () => {
    const sets = Array.from({ length: 16 }, (_, i) => ({ label: `set ${i}`, values: { 7: 'c'.repeat(40) } }));
    const policy = parsePcrPolicy({ bank: 'sha1', pcrs: [7], mode: 'warn', allowedSets: sets });
    expect(policy.allowedSets).toHaveLength(16);
    expect(policy.mode).toBe('warn');
  });

  it.each<[string, unknown, string, string]>([
    ['not an object', [], 'policy', 'must be an object'],
    ['an unknown field', { ...valid(), mdoe: 'warn' }, 'policy', 'unknown field "mdoe" (known: bank, pcrs, allowedSets, mode)'],
    ['an unknown field with an escape, shown escaped', { ...valid(), 'mode\u001b[2J': 1 }, 'policy', 'unknown field "mode\\u001b[2J" (known: bank, pcrs, allowedSets, mode)'],
    ['a bank spelt otherwise', { ...valid(), bank: 'SHA256' }, 'bank', '"SHA256" is not a PCR bank rackseal implements (sha1, sha256, sha384, sha512, sha3_256, sha3_384, sha3_512)'],
    ['an unknown bank', { ...valid(), bank: 'sm3_256' }, 'bank', '"sm3_256" is not a PCR bank rackseal implements (sha1, sha256, sha384, sha512, sha3_256, sha3_384, sha3_512)'],
    ['a bank that is not a string', { ...valid(), bank: 11 }, 'bank', 'must be a string'],
    ['PCRs not an array', { ...valid(), pcrs: '0,4' }, 'pcrs', 'must be an array'],
    ['no PCR', { ...valid(), pcrs: [] }, 'pcrs', 'must name at least one PCR'],
    ['PCR 24', { ...valid(), pcrs: [0, 24] }, 'pcrs[1]', 'must be a PCR index 0–23'],
    ['PCR -1', { ...valid(), pcrs: [-1, 4] }, 'pcrs[0]', 'must be a PCR index 0–23'],
    ['a fractional PCR', { ...valid(), pcrs: [0, 4.5] }, 'pcrs[1]', 'must be a PCR index 0–23'],
    ['a PCR as a string', { ...valid(), pcrs: ['0', 4] }, 'pcrs[0]', 'must be a PCR index 0–23'],
    ['a PCR listed twice', { ...valid(), pcrs: [0, 4, 4] }, 'pcrs[2]', 'PCR 4 is listed twice'],
    ['PCRs out of order', { ...valid(), pcrs: [4, 0] }, 'pcrs[1]', 'must be in ascending order (PCR 0 after 4)'],
    ['no set', { ...valid(), allowedSets: [] }, 'allowedSets', 'must hold 1–16 sets, not 0'],
    ['17 sets', { ...valid(), allowedSets: Array.from({ length: 17 }, (_, i) => ({ label: `s${i}`, values: { 0: D0, 4: D4 } })) }, 'allowedSets', 'must hold 1–16 sets, not 17'],
    ['sets not an array', { ...valid(), allowedSets: {} }, 'allowedSets', 'must be an array'],
    ['a set that is not an object', { ...valid(), allowedSets: ['x'] }, 'allowedSets[0]', 'must be an object'],
    ['an unknown set field', withSet0((s) => (s.value = {})), 'allowedSets[0]', 'unknown field "value" (known: label, values, promotedFrom)'],
    ['no label', withSet0((s) => delete s.label), 'allowedSets[0].label', 'must be a string'],
    ['an empty label', withSet0((s) => (s.label = '')), 'allowedSets[0].label', 'must be 1–64 characters, not 0'],
    ['a 65-character label', withSet0((s) => (s.label = 'k'.repeat(65))), 'allowedSets[0].label', 'must be 1–64 characters, not 65'],
    ['an escape sequence in a label', withSet0((s) => (s.label = 'ok\u001b[2J')), 'allowedSets[0].label', 'must be printable (U+001B at index 2)'],
    ['a bidi control in a label', withSet0((s) => (s.label = 'kernel\u202e')), 'allowedSets[0].label', 'must be printable (U+202E at index 6)'],
    ['a label with a leading space', withSet0((s) => (s.label = ' kernel')), 'allowedSets[0].label', 'must not start or end with a space'],
    ['two sets with one label', withSet0((s) => (s.label = 'kernel 6.9')), 'allowedSets[1].label', '"kernel 6.9" is also the label of allowedSets[0]'],
    ['values not an object', withSet0((s) => (s.values = [D0, D4])), 'allowedSets[0].values', 'must be an object of PCR index → hex digest'],
    ['a set missing a PCR of the list', withSet0((s) => (s.values = { 0: D0 })), 'allowedSets[0].values.4', 'missing: every set gives a value for every PCR of the policy'],
    ['a value for a PCR not in the list', withSet0((s) => (s.values = { 0: D0, 4: D4, 7: D4 })), 'allowedSets[0].values.7', "is not a PCR of the policy's list (0, 4)"],
    ['a PCR key written 04', withSet0((s) => (s.values = { 0: D0, '04': D4 })), 'allowedSets[0].values.04', "is not a PCR of the policy's list (0, 4)"],
    ['a PCR key with a bidi control, shown escaped', withSet0((s) => (s.values = { 0: D0, 4: D4, '4\u202e': D4 })), 'allowedSets[0].values.4\\u202e', "is not a PCR of the policy's list (0, 4)"],
    ['a sha1-sized value in a sha256 policy', withSet0((s) => (s.values = { 0: D0, 4: 'b'.repeat(40) })), 'allowedSets[0].values.4', 'a sha256 digest is 64 hex digits, not 40'],
    ['an odd hex length', withSet0((s) => (s.values = { 0: D0, 4: 'b'.repeat(63) })), 'allowedSets[0].values.4', 'a sha256 digest is 64 hex digits, not 63'],
    ['a value that is not hex', withSet0((s) => (s.values = { 0: D0, 4: 'g'.repeat(64) })), 'allowedSets[0].values.4', 'must be a hex string'],
    ['a value that is not a string', withSet0((s) => (s.values = { 0: D0, 4: 4 })), 'allowedSets[0].values.4', 'must be a hex string'],
    ['promotedFrom not an object', withSet0((s) => (s.promotedFrom = 'canary-01')), 'allowedSets[0].promotedFrom', 'must be an object'],
    ['an unknown promotedFrom field', withPromoted({ when: 'now' }), 'allowedSets[1].promotedFrom', 'unknown field "when" (known: machine, at, eventLog)'],
    ['no canary name', withPromoted({ machine: undefined }), 'allowedSets[1].promotedFrom.machine', 'must be a string'],
    ['a canary name with a newline', withPromoted({ machine: 'canary\n01' }), 'allowedSets[1].promotedFrom.machine', 'must be printable (U+000A at index 6)'],
    ['a date that is not ISO 8601', withPromoted({ at: 'yesterday' }), 'allowedSets[1].promotedFrom.at', 'must be an ISO 8601 UTC timestamp (2026-12-02T16:10:14.000Z)'],
    ['a date with an offset', withPromoted({ at: '2026-12-01T09:30:00+01:00' }), 'allowedSets[1].promotedFrom.at', 'must be an ISO 8601 UTC timestamp (2026-12-02T16:10:14.000Z)'],
    ['30 February', withPromoted({ at: '2026-02-30T09:30:00.000Z' }), 'allowedSets[1].promotedFrom.at', 'must be an ISO 8601 UTC timestamp (2026-12-02T16:10:14.000Z)'],
    ['an event log that is not a string', withPromoted({ eventLog: 12 }), 'allowedSets[1].promotedFrom.eventLog', 'must be a base64 string'],
    ['an event log that is not base64', withPromoted({ eventLog: 'not base64!' }), 'allowedSets[1].promotedFrom.eventLog', 'must be canonical base64 (RFC 4648 §4, padded, nothing else)'],
    ['an event log with a line break', withPromoted({ eventLog: `${CANARY_LOG.slice(0, 76)}\n${CANARY_LOG.slice(76)}` }), 'allowedSets[1].promotedFrom.eventLog', 'must be canonical base64 (RFC 4648 §4, padded, nothing else)'],
    ['non-canonical base64 padding bits', withPromoted({ eventLog: 'QR==' }), 'allowedSets[1].promotedFrom.eventLog', 'must be canonical base64 (RFC 4648 §4, padded, nothing else)'],
    [
      'an event log whose base64 is longer than any 1 MiB log',
      withPromoted({ eventLog: Buffer.alloc(MAX_EVENT_LOG_BYTES + 3).toString('base64') }),
      'allowedSets[1].promotedFrom.eventLog',
      'the event log is larger than 1048576 bytes',
    ],
    [
      'an event log of 1 MiB + 1 byte',
      withPromoted({ eventLog: Buffer.alloc(MAX_EVENT_LOG_BYTES + 1).toString('base64') }),
      'allowedSets[1].promotedFrom.eventLog',
      'the event log is 1048577 bytes, more than 1048576',
    ],
    [
      // Exactly 1 MiB passes the size check and reaches the parser (which refuses all-zero bytes).
      'an event log of 1 MiB that is not a log',
      withPromoted({ eventLog: Buffer.alloc(MAX_EVENT_LOG_BYTES).toString('base64') }),
      'allowedSets[1].promotedFrom.eventLog',
      'the event log does not parse: TCG_PCR_EVENT[0].pcrIndex at offset 0: the event log is 1048576 byte(s) of 0x00/0xFF fill: no event',
    ],
    ['an empty event log', withPromoted({ eventLog: '' }), 'allowedSets[1].promotedFrom.eventLog', 'the event log does not parse: TCG_PCR_EVENT[0].pcrIndex at offset 0: the event log is empty: no event'],
    ['mode missing', { ...valid(), mode: undefined }, 'mode', 'must be "enforce" or "warn"'],
    ['mode audit', { ...valid(), mode: 'audit' }, 'mode', 'must be "enforce" or "warn"'],
  ])('refuses %s, naming the field', (_name, json, field, reason) => {
    const error = refusal(json);
    expect(error.field).toBe(field);
    expect(error.reason).toBe(reason);
    expect(error.message).toBe(`${field}: ${reason}`);
  });

  it('refuses a canary log that does not parse, or carries no digests of the bank', () => {
    const bogus = readFileSync(fixturePath('eventlogs', 'keylime-binary_bios_measurements-bogus')).toString('base64');
    expect(refusal(withPromoted({ eventLog: bogus })).reason).toMatch(/^the event log does not parse: TCG_PCR_EVENT\[0\]\./);
    const sha1Policy: Record<string, unknown> = { ...withPromoted({ eventLog: SHA256_ONLY_LOG }), bank: 'sha1' };
    (sha1Policy.allowedSets as { values: unknown }[]).forEach((s) => (s.values = { 0: 'c'.repeat(40), 4: 'd'.repeat(40) }));
    expect(refusal(sha1Policy)).toMatchObject({ field: 'allowedSets[1].promotedFrom.eventLog', reason: 'the event log carries no sha1 digests' });
  });
});
