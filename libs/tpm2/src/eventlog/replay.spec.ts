import { createHash } from 'node:crypto';
import { TPM_ALG_ID } from '../constants';
import { digest } from '../hash-algorithms';
import { marshalEventLog, parseEventLog } from './event-log';
import { EV } from './event-types';
import { explainPcrs, type QuotedPcrs } from './explain';
import { pcr0StartOf, pcrResetValue, replayEventLog } from './replay';
import type { TCG_EfiSpecIDEvent } from './spec-id-event';
import type { TcgEventFields } from './tcg-pcr-event';

const SHA1 = TPM_ALG_ID.TPM_ALG_SHA1;
const SHA256 = TPM_ALG_ID.TPM_ALG_SHA256;
const SM3_256 = 0x0012; // declared by some firmware, which this library does not support

const SPEC_ID: TCG_EfiSpecIDEvent = {
  signature: 'Spec ID Event03',
  platformClass: 0,
  specVersionMinor: 0,
  specVersionMajor: 2,
  specErrata: 0,
  uintnSize: 2,
  digestSizes: [
    { algorithmId: SHA1, digestSize: 20 },
    { algorithmId: SHA256, digestSize: 32 },
    { algorithmId: SM3_256, digestSize: 32 },
  ],
  vendorInfo: Buffer.from('vendor'),
};
const HEADER: TcgEventFields = { pcrIndex: 0, eventType: EV.EV_NO_ACTION, digests: [{ hashAlg: SHA1, digest: Buffer.alloc(20) }], event: Buffer.alloc(0) };

/** An event whose digests are H(label) in each bank (SM3 gets filler: we never hash it). */
function event(pcrIndex: number, eventType: number, label: string): TcgEventFields {
  const data = Buffer.from(label);
  return {
    pcrIndex,
    eventType,
    digests: [
      { hashAlg: SHA1, digest: digest(SHA1, data) },
      { hashAlg: SHA256, digest: digest(SHA256, data) },
      { hashAlg: SM3_256, digest: Buffer.alloc(32, 0x33) },
    ],
    event: data,
  };
}
const noAction = (pcrIndex: number, data: Buffer): TcgEventFields => ({
  pcrIndex,
  eventType: EV.EV_NO_ACTION,
  digests: SPEC_ID.digestSizes.map((d) => ({ hashAlg: d.algorithmId, digest: Buffer.alloc(d.digestSize) })),
  event: data,
});
const startupLocality = (locality: number) => noAction(0, Buffer.concat([Buffer.from('StartupLocality\0', 'latin1'), Buffer.from([locality])]));

/** The TPM's extend, written out independently of replay.ts. */
function chain(node: 'sha1' | 'sha256', initial: Buffer, labels: string[]): Buffer {
  return labels.reduce((pcr, label) => {
    const measurement = createHash(node).update(label).digest();
    return createHash(node).update(pcr).update(measurement).digest();
  }, initial);
}

/** A PCR 0 reset value: zeros ending in the locality byte. */
const locality = (size: number, value: number) => Buffer.concat([Buffer.alloc(size - 1), Buffer.from([value])]);

const log = (...events: TcgEventFields[]) => parseEventLog(marshalEventLog({ specId: SPEC_ID, events: [HEADER, ...events] }));

describe('replayEventLog', () => {
  it('extends every event but EV_NO_ACTION per bank from zero, and skips banks it cannot hash', () => {
    const replay = replayEventLog(
      log(event(0, EV.EV_S_CRTM_VERSION, 'a'), noAction(0, Buffer.from('SP800-155 Event\0')), event(7, EV.EV_SEPARATOR, 'b'), event(0, EV.EV_SEPARATOR, 'c')),
    );
    expect([...replay.banks.keys()]).toEqual(['sha1', 'sha256']);
    expect(replay.unsupportedAlgorithms).toEqual([SM3_256]);
    expect([...replay.banks.get('sha256')!.keys()]).toEqual([0, 7]);
    expect(replay.banks.get('sha1')!.get(0)).toEqual(chain('sha1', Buffer.alloc(20), ['a', 'c']));
    expect(replay.banks.get('sha256')!.get(7)).toEqual(chain('sha256', Buffer.alloc(32), ['b']));
    expect(replay).toMatchObject({ events: 5, extended: 3, noAction: 2, startupLocality: undefined, pcr0Start: undefined });
  });

  it('starts PCR 0 at the StartupLocality locality (PFP §10.4.5.3) in every bank', () => {
    const replay = replayEventLog(log(startupLocality(3), event(0, EV.EV_S_CRTM_VERSION, 'a'), event(1, EV.EV_SEPARATOR, 'b')));
    const initial = (size: number) => Buffer.concat([Buffer.alloc(size - 1), Buffer.from([3])]);
    expect(replay.startupLocality).toBe(3);
    expect(replay.pcr0Start).toEqual({ source: 'startup-locality', locality: 3, event: 1 });
    expect(replay.banks.get('sha1')!.get(0)).toEqual(chain('sha1', initial(20), ['a']));
    expect(replay.banks.get('sha256')!.get(0)).toEqual(chain('sha256', initial(32), ['a']));
    // Only PCR 0 starts at the locality.
    expect(replay.banks.get('sha256')!.get(1)).toEqual(chain('sha256', Buffer.alloc(32), ['b']));
  });

  it('ignores a StartupLocality event that comes after PCR 0 was extended', () => {
    const replay = replayEventLog(log(event(0, EV.EV_S_CRTM_VERSION, 'a'), startupLocality(3)));
    expect(replay.startupLocality).toBeUndefined();
    expect(replay.banks.get('sha256')!.get(0)).toEqual(chain('sha256', Buffer.alloc(32), ['a']));
  });

  // TPM 2.0 Library Part 1 §34.3: an H-CRTM before TPM2_Startup resets PCR 0 to 0…04, then extends its digest.
  it('starts PCR 0 at 0…04 in every bank when the first event extended into PCR 0 is EV_EFI_HCRTM_EVENT', () => {
    const replay = replayEventLog(log(event(0, EV.EV_EFI_HCRTM_EVENT, 'HCRTM'), event(0, EV.EV_S_CRTM_VERSION, 'a'), event(1, EV.EV_SEPARATOR, 'b')));
    expect(replay.pcr0Start).toEqual({ source: 'h-crtm', locality: 4, event: 1 });
    expect(replay.startupLocality).toBeUndefined();
    expect(replay.banks.get('sha1')!.get(0)).toEqual(chain('sha1', locality(20, 4), ['HCRTM', 'a']));
    expect(replay.banks.get('sha256')!.get(0)).toEqual(chain('sha256', locality(32, 4), ['HCRTM', 'a']));
    expect(replay.banks.get('sha256')!.get(1)).toEqual(chain('sha256', Buffer.alloc(32), ['b']));
    expect(replay.unsupportedAlgorithms).toEqual([SM3_256]);
  });

  it('lets the H-CRTM win over a StartupLocality event before it (TPM2_Startup does not reset PCR 0 after one)', () => {
    const replay = replayEventLog(log(startupLocality(3), event(0, EV.EV_EFI_HCRTM_EVENT, 'HCRTM')));
    expect(replay.pcr0Start).toEqual({ source: 'h-crtm', locality: 4, event: 2 });
    expect(replay.startupLocality).toBeUndefined();
    expect(replay.banks.get('sha256')!.get(0)).toEqual(chain('sha256', locality(32, 4), ['HCRTM']));
  });

  it('does not apply the H-CRTM rule to an EV_EFI_HCRTM_EVENT after PCR 0 was extended, nor on another PCR', () => {
    const late = replayEventLog(log(event(0, EV.EV_S_CRTM_VERSION, 'a'), event(0, EV.EV_EFI_HCRTM_EVENT, 'HCRTM')));
    expect(late.pcr0Start).toBeUndefined();
    expect(late.banks.get('sha256')!.get(0)).toEqual(chain('sha256', Buffer.alloc(32), ['a', 'HCRTM']));
    const elsewhere = log(event(2, EV.EV_EFI_HCRTM_EVENT, 'HCRTM'), startupLocality(3), event(0, EV.EV_S_CRTM_VERSION, 'a'));
    expect(pcr0StartOf(elsewhere)).toEqual({ source: 'startup-locality', locality: 3, event: 2 });
    expect(replayEventLog(elsewhere).banks.get('sha256')!.get(0)).toEqual(chain('sha256', locality(32, 3), ['a']));
  });

  it('knows the reset values: zero, all ones for PCRs 17–22, the locality in PCR 0', () => {
    expect(pcrResetValue(20, 16, 3)).toEqual(Buffer.alloc(20));
    expect(pcrResetValue(20, 17, undefined)).toEqual(Buffer.alloc(20, 0xff));
    expect(pcrResetValue(32, 22, undefined)).toEqual(Buffer.alloc(32, 0xff));
    expect(pcrResetValue(32, 23, undefined)).toEqual(Buffer.alloc(32));
    expect(pcrResetValue(4, 0, 4)).toEqual(Buffer.from([0, 0, 0, 4]));
  });
});

describe('explainPcrs', () => {
  const full = log(event(0, EV.EV_S_CRTM_VERSION, 'a'), event(7, EV.EV_EFI_VARIABLE_DRIVER_CONFIG, 'b'), event(7, EV.EV_SEPARATOR, 'c'), event(7, EV.EV_EFI_VARIABLE_AUTHORITY, 'd'));
  const quote = (pcr7: Buffer, extra: [number, Buffer][] = []): QuotedPcrs => new Map([['sha256', new Map<number, Buffer>([[7, pcr7], ...extra])]]);

  it('says match when the whole log replays to the quoted value', () => {
    const [explanation] = explainPcrs(full, quote(chain('sha256', Buffer.alloc(32), ['b', 'c', 'd'])));
    expect(explanation).toMatchObject({ status: 'match', bank: 'sha256', pcrIndex: 7, events: [2, 3, 4], message: 'sha256 PCR 7: matches the log (3 event(s))' });
  });

  it('names the first event the quote does not include when the quote is the replay of a prefix', () => {
    const [explanation] = explainPcrs(full, quote(chain('sha256', Buffer.alloc(32), ['b'])));
    expect(explanation).toMatchObject({
      status: 'extra-events',
      matchedEvents: 1,
      firstExtraEvent: 3,
      message: 'sha256 PCR 7: the quote equals the replay of the first 1 of 3 event(s); the log has 2 event(s) the quote does not include, from event 3',
    });
    // The empty prefix: the TPM's PCR 7 was never extended, the log claims three events.
    expect(explainPcrs(full, quote(Buffer.alloc(32)))[0]).toMatchObject({ status: 'extra-events', matchedEvents: 0, firstExtraEvent: 2 });
  });

  it('says the log does not explain a value no prefix reaches (events missing, or a digest differs)', () => {
    const quoted = chain('sha256', Buffer.alloc(32), ['b', 'c', 'd', 'e']);
    const replayed = chain('sha256', Buffer.alloc(32), ['b', 'c', 'd']);
    const [explanation] = explainPcrs(full, quote(quoted));
    expect(explanation).toMatchObject({ status: 'unexplained', lastEvent: 4, replayed, quoted });
    expect(explanation!.message).toBe(
      `sha256 PCR 7: the log replays to ${replayed.toString('hex')}, the quote says ${quoted.toString('hex')}; ` +
        'no prefix of its 3 event(s) gives the quoted value: the log is incomplete (events missing after event 4) or a digest in it differs from what was extended',
    );
  });

  it('explains PCR 0 of an H-CRTM log from 0…04, as replay does', () => {
    const hcrtmLog = log(event(0, EV.EV_EFI_HCRTM_EVENT, 'HCRTM'), event(0, EV.EV_S_CRTM_VERSION, 'a'));
    const fromLocality4 = chain('sha256', locality(32, 4), ['HCRTM', 'a']);
    expect(explainPcrs(hcrtmLog, new Map([['sha256', new Map([[0, fromLocality4]])]]))[0]).toMatchObject({ status: 'match', replayed: fromLocality4 });
    // The quote taken right after the H-CRTM: the prefix of one event, from 0…04.
    const afterHcrtm = chain('sha256', locality(32, 4), ['HCRTM']);
    expect(explainPcrs(hcrtmLog, new Map([['sha256', new Map([[0, afterHcrtm]])]]))[0]).toMatchObject({ status: 'extra-events', matchedEvents: 1 });
    // The value a replay from zero would give is not explained.
    const fromZero = chain('sha256', Buffer.alloc(32), ['HCRTM', 'a']);
    expect(explainPcrs(hcrtmLog, new Map([['sha256', new Map([[0, fromZero]])]]))[0]).toMatchObject({ status: 'unexplained' });
  });

  it('holds PCRs the log never extends to their reset values, and reports banks the log lacks', () => {
    const explanations = explainPcrs(
      full,
      new Map([
        ['sha256', new Map([[18, Buffer.alloc(32, 0xff)], [3, Buffer.alloc(32)], [4, Buffer.alloc(32, 1)]])],
        ['sha384', new Map([[0, Buffer.alloc(48)]])],
      ]),
    );
    expect(explanations.map((e) => [e.bank, e.pcrIndex, e.status])).toEqual([
      ['sha256', 3, 'match'],
      ['sha256', 4, 'unexplained'],
      ['sha256', 18, 'match'],
      ['sha384', 0, 'bank-not-in-log'],
    ]);
    expect(explanations[3]!.message).toBe('sha384 PCR 0: the log has no sha384 digests to replay');
    // A bank the log carries but this library cannot hash is not called absent.
    const [sm3] = explainPcrs(full, new Map([['sm3_256', new Map([[7, Buffer.alloc(32)]])]]));
    expect(sm3).toMatchObject({
      status: 'bank-not-in-log',
      message: 'sm3_256 PCR 7: the log carries sm3_256 digests, but rackseal does not implement sm3_256 and cannot replay them',
    });
    expect(explanations[1]!.message).toMatch(/the log has no event for this PCR, so it cannot explain a value other than the reset value$/);
  });
});
