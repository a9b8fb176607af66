import { digest, encodeUefiVariableData, EV, marshalEventLog, TPM_ALG_ID, type TCG_EfiSpecIDEvent, type TcgEventFields } from '@rackseal/tpm2';
import { evaluatePcrPolicy } from './evaluate';
import { parsePcrPolicy } from './parse-policy';
import { promoteToSet } from './promote';
import { quoteOf } from './testing/log-edits';

/**
 * The walk's re-alignment on small built logs (PCR 8, GRUB's command lines as EV_IPL text), where
 * each case is one edit of the reference; the real-log cases are in evaluate.spec.ts.
 */
const SHA256 = TPM_ALG_ID.TPM_ALG_SHA256;
const SPEC_ID: TCG_EfiSpecIDEvent = {
  signature: 'Spec ID Event03',
  platformClass: 0,
  specVersionMinor: 0,
  specVersionMajor: 2,
  specErrata: 0,
  uintnSize: 2,
  digestSizes: [{ algorithmId: SHA256, digestSize: 32 }],
  vendorInfo: Buffer.alloc(0),
};
const HEADER: TcgEventFields = { pcrIndex: 0, eventType: EV.EV_NO_ACTION, digests: [{ hashAlg: TPM_ALG_ID.TPM_ALG_SHA1, digest: Buffer.alloc(20) }], event: Buffer.alloc(0) };

/** An EV_IPL event on PCR 8 whose digest is that of its text, as GRUB measures its commands. */
function ipl(text: string): TcgEventFields {
  const data = Buffer.from(text, 'latin1');
  return { pcrIndex: 8, eventType: EV.EV_IPL, digests: [{ hashAlg: SHA256, digest: digest(SHA256, data) }], event: data };
}

/** Event #0 is the header, so the text `c` is event #3 of `a b c`. */
const build = (...events: TcgEventFields[]): Buffer => marshalEventLog({ specId: SPEC_ID, events: [HEADER, ...events] });
const lines = (...texts: string[]) => build(...texts.map(ipl));

const REFERENCE = lines('a', 'b', 'c', 'd', 'e');
const AT = new Date('2026-12-01T09:30:00.000Z');
const POLICY = parsePcrPolicy({
  bank: 'sha256',
  pcrs: [8],
  mode: 'enforce',
  allowedSets: [promoteToSet({ bank: 'sha256', pcrs: [8] }, 'reference', 'canary-01', quoteOf(REFERENCE, 'sha256', [8]), REFERENCE, AT)],
});

function summaries(machine: Buffer, maxEventsPerPcr?: number): string[] {
  const verdict = evaluatePcrPolicy(POLICY, quoteOf(machine, 'sha256', [8]), { eventLog: machine, maxEventsPerPcr });
  return verdict.explanation.map((e) => e.summary);
}

describe('divergence walk', () => {
  it.each<[string, Buffer, string[]]>([
    ['one event replaced', lines('a', 'X', 'c', 'd', 'e'), ['PCR 8: event #2 EV_IPL digest differs (X)']],
    ['one event removed', lines('a', 'c', 'd', 'e'), ["PCR 8: canary-01's event #2 EV_IPL is missing (b)"]],
    ['two events inserted', lines('a', 'b', 'X', 'Y', 'c', 'd', 'e'), ["PCR 8: event #3 EV_IPL is extra, not in canary-01's log (X)", "PCR 8: event #4 EV_IPL is extra, not in canary-01's log (Y)"]],
    ['the log cut short', lines('a', 'b', 'c'), ["PCR 8: canary-01's event #4 EV_IPL is missing (d)", "PCR 8: canary-01's event #5 EV_IPL is missing (e)"]],
    ['a replaced event then a removed one', lines('a', 'X', 'c', 'e'), ['PCR 8: event #2 EV_IPL digest differs (X)', "PCR 8: canary-01's event #4 EV_IPL is missing (d)"]],
    // At c against b both gaps are one event: extra wins, then the reference's c is missing after b.
    ['two events swapped', lines('a', 'c', 'b', 'd', 'e'), ["PCR 8: event #2 EV_IPL is extra, not in canary-01's log (c)", "PCR 8: canary-01's event #3 EV_IPL is missing (c)"]],
  ])('%s', (_name, machine, expected) => {
    expect(summaries(machine)).toEqual(expected);
  });

  it('stops at the limit and says so', () => {
    expect(summaries(lines('V', 'W', 'X', 'Y', 'Z'), 3)).toEqual([
      'PCR 8: event #1 EV_IPL digest differs (V)',
      'PCR 8: event #2 EV_IPL digest differs (W)',
      'PCR 8: event #3 EV_IPL digest differs (X)',
      'PCR 8: further divergences not listed (at most 3 per PCR)',
    ]);
  });

  it('says when PCR 0 has the same events but started from another locality', () => {
    const crtm = (text: string): TcgEventFields => ({ ...ipl(text), pcrIndex: 0, eventType: EV.EV_S_CRTM_VERSION });
    const startupLocality: TcgEventFields = {
      pcrIndex: 0,
      eventType: EV.EV_NO_ACTION,
      digests: [{ hashAlg: SHA256, digest: Buffer.alloc(32) }],
      event: Buffer.concat([Buffer.from('StartupLocality\0', 'latin1'), Buffer.from([3])]),
    };
    const reference = build(crtm('firmware 1.0'));
    const machine = build(startupLocality, crtm('firmware 1.0'));
    const base = { bank: 'sha256', pcrs: [0] };
    const policy = parsePcrPolicy({ ...base, mode: 'enforce', allowedSets: [promoteToSet(base, 'fw', 'canary-01', quoteOf(reference, 'sha256', [0]), reference, AT)] });
    const verdict = evaluatePcrPolicy(policy, quoteOf(machine, 'sha256', [0]), { eventLog: machine });
    expect(verdict.decision).toBe('mismatch');
    expect(verdict.explanation).toEqual([
      {
        kind: 'initial-value-differs',
        pcr: 0,
        locality: 3,
        referenceLocality: 0,
        summary: "PCR 0: the same events as canary-01's log, started from another value (locality 3, canary-01's 0)",
      },
    ]);
  });

  it('never shows unprintable event text, and cuts long text', () => {
    const variable = (name: string): TcgEventFields => {
      const data = encodeUefiVariableData({ variableName: '8be4df61-93ca-11d2-aa0d-00e098032b8c', unicodeName: name, variableData: Buffer.from([1]) });
      return { pcrIndex: 8, eventType: EV.EV_EFI_VARIABLE_BOOT, digests: [{ hashAlg: SHA256, digest: digest(SHA256, data) }], event: data };
    };
    const machine = build(ipl('a'), variable('Boot\u001b[2J'), ipl('c'), ipl('d'), ipl('e'));
    expect(summaries(machine)).toEqual(['PCR 8: event #2 EV_EFI_VARIABLE_BOOT digest differs']);

    const long = 'linux /vmlinuz root=/dev/sda1 ' + 'x'.repeat(300);
    const [summary] = summaries(lines('a', long, 'c', 'd', 'e'));
    expect(summary).toBe(`PCR 8: event #2 EV_IPL digest differs (${long.slice(0, 127)}…)`);
  });
});
