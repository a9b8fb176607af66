import { TpmWriter } from '../codec/tpm-writer';
import { TpmClient } from '../client/tpm-client';
import type { TpmTransport } from '../client/transport';
import { getHandles, getTpmProperties, getTpmProperty } from './capability';
import { TPM_CAP, TPM_HT, TPM_PT } from './capability-constants';
import { TpmAnswerError } from './tpm-answer-error';

/**
 * A TPM whose GetCapability answers at most `perCall` entries and says moreData when more follow,
 * as Part 3 §30.2 lets a TPM with a small MAX_CAP_BUFFER do. swtpm answers everything at once, so
 * only a fake shows the continuation loop.
 */
class PagingTpm implements TpmTransport {
  readonly description = 'paging fake';
  readonly asked: { capability: number; property: number; count: number }[] = [];

  constructor(
    private readonly properties: ReadonlyMap<number, number>,
    private readonly handles: readonly number[],
    private readonly perCall: number,
  ) {}

  async transmit(command: Buffer): Promise<Buffer> {
    const [capability, property, count] = [command.readUInt32BE(10), command.readUInt32BE(14), command.readUInt32BE(18)];
    this.asked.push({ capability, property, count });
    const body = new TpmWriter();
    if (capability === TPM_CAP.TPM_CAP_TPM_PROPERTIES) {
      // Part 3 §30.2: only properties of the group `property` is in.
      const all = [...this.properties].filter(([p]) => p >= property && p >> 8 === property >> 8).sort(([a], [b]) => a - b);
      const page = all.slice(0, Math.min(count, this.perCall));
      body.u8(all.length > page.length ? 1 : 0).u32(capability).u32(page.length);
      page.forEach(([p, v]) => body.u32(p).u32(v));
    } else {
      const all = this.handles.filter((h) => h >= property && h >>> 24 === property >>> 24);
      const page = all.slice(0, Math.min(count, this.perCall));
      body.u8(all.length > page.length ? 1 : 0).u32(capability).u32(page.length);
      page.forEach((h) => body.u32(h));
    }
    const parameters = body.toBuffer();
    return new TpmWriter().u16(0x8001).u32(10 + parameters.length).u32(0).bytes(parameters).toBuffer();
  }

  async close(): Promise<void> {}
}

const PROPERTIES = new Map<number, number>([
  [TPM_PT.TPM_PT_FAMILY_INDICATOR, 0x322e3000],
  [TPM_PT.TPM_PT_LEVEL, 0],
  [TPM_PT.TPM_PT_REVISION, 164],
  [TPM_PT.TPM_PT_MANUFACTURER, 0x49424d00],
  [TPM_PT.TPM_PT_FIRMWARE_VERSION_1, 0x20191023],
  [TPM_PT.TPM_PT_NV_BUFFER_MAX, 0x400],
  [TPM_PT.TPM_PT_PERMANENT, 0x100],
]);

describe('GetCapability continuation (moreData)', () => {
  it('follows moreData from the last property + 1 and stays in the group asked', async () => {
    const tpm = new PagingTpm(PROPERTIES, [], 2);
    const properties = await getTpmProperties(new TpmClient(tpm), TPM_PT.TPM_PT_FAMILY_INDICATOR, 256);
    expect(properties.map((p) => p.property)).toEqual([0x100, 0x101, 0x102, 0x105, 0x10b, 0x12c]);
    expect(tpm.asked.map((a) => [a.property, a.count])).toEqual([[0x100, 256], [0x102, 254], [0x106, 252]]);
  });

  it('stops at the count asked even when the TPM has more', async () => {
    const tpm = new PagingTpm(PROPERTIES, [], 2);
    const properties = await getTpmProperties(new TpmClient(tpm), TPM_PT.TPM_PT_FAMILY_INDICATOR, 3);
    expect(properties.map((p) => p.property)).toEqual([0x100, 0x101, 0x102]);
    expect(tpm.asked).toHaveLength(2);
  });

  it('getTpmProperty refuses the next property in place of one the TPM lacks', async () => {
    const client = new TpmClient(new PagingTpm(PROPERTIES, [], 2));
    expect(await getTpmProperty(client, TPM_PT.TPM_PT_MANUFACTURER)).toBe(0x49424d00);
    await expect(getTpmProperty(client, TPM_PT.TPM_PT_VENDOR_STRING_1)).rejects.toEqual(
      new TpmAnswerError('TPM2_GetCapability', 'the TPM does not report TPM_PT_VENDOR_STRING_1'),
    );
  });

  it('lists handles of one type across pages', async () => {
    const nv = Array.from({ length: 7 }, (_, i) => 0x01c00000 + i);
    const tpm = new PagingTpm(PROPERTIES, [...nv, 0x81000001, 0x81010001], 3);
    expect(await getHandles(new TpmClient(tpm), TPM_HT.TPM_HT_NV_INDEX)).toEqual(nv);
    expect(await getHandles(new TpmClient(tpm), TPM_HT.TPM_HT_PERSISTENT)).toEqual([0x81000001, 0x81010001]);
    expect(await getHandles(new TpmClient(tpm), TPM_HT.TPM_HT_TRANSIENT)).toEqual([]);
    expect(tpm.asked.slice(0, 3).map((a) => a.property)).toEqual([0x01000000, 0x01c00003, 0x01c00006]);
  });

  it('refuses an answer for another capability than the one asked', async () => {
    // header ‖ moreData NO ‖ capability TPM_CAP_PCRS ‖ an empty list
    const liar: TpmTransport = {
      description: 'liar',
      transmit: async () => Buffer.from('80010000001300000000' + '00' + '00000005' + '00000000', 'hex'),
      close: async () => undefined,
    };
    await expect(getTpmProperties(new TpmClient(liar), 0x100, 1)).rejects.toThrow(/asked for capability 6, the TPM answered 5/);
  });
});
