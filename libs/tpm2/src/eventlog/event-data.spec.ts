import { TPM_ALG_ID } from '../constants';
import { digest } from '../hash-algorithms';
import { checkDigests } from './digest-check';
import { EFI_GLOBAL_VARIABLE, efiGuidFromString, efiGuidToString } from './efi-guid';
import { decodeEventData, type EventData } from './event-data';
import { EV, eventTypeName } from './event-types';
import { devicePathFilePath } from './uefi-image-load-event';
import { encodeUefiVariableData } from './uefi-variable-data';

const SHA1 = TPM_ALG_ID.TPM_ALG_SHA1;
const SHA256 = TPM_ALG_ID.TPM_ALG_SHA256;

function u64(value: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(value);
  return b;
}

/** A device path: PciRoot-ish hardware node, a File Path node, the end node (UEFI 2.10 §10.3). */
function filePathDevicePath(path: string): Buffer {
  const name = Buffer.from(`${path}\0`, 'utf16le');
  const node = (type: number, subType: number, data: Buffer) => {
    const header = Buffer.from([type, subType, 0, 0]);
    header.writeUInt16LE(4 + data.length, 2);
    return Buffer.concat([header, data]);
  };
  return Buffer.concat([node(0x01, 0x01, Buffer.from([0, 2])), node(0x04, 0x04, name), node(0x7f, 0xff, Buffer.alloc(0))]);
}

describe('EFI_GUID and event type names', () => {
  it('prints the mixed-endian GUID as UEFI and tpm2_eventlog do, and reads it back', () => {
    const bytes = Buffer.from('61dfe48bca93d211aa0d00e098032b8c', 'hex');
    expect(efiGuidToString(bytes)).toBe(EFI_GLOBAL_VARIABLE);
    expect(efiGuidFromString(EFI_GLOBAL_VARIABLE).equals(bytes)).toBe(true);
  });

  it('names PFP and EV_EFI_* types, and shows others in hex', () => {
    expect(eventTypeName(0x80000003)).toBe('EV_EFI_BOOT_SERVICES_APPLICATION');
    expect(eventTypeName(0x800000e0)).toBe('EV_EFI_VARIABLE_AUTHORITY');
    expect(eventTypeName(0x0d)).toBe('EV_IPL');
    expect(eventTypeName(0x10000001)).toBe('0x10000001');
  });
});

describe('decodeEventData (PFP §10.2)', () => {
  it('decodes UEFI_VARIABLE_DATA and keeps bytes after VariableData', () => {
    const data = encodeUefiVariableData({ variableName: EFI_GLOBAL_VARIABLE, unicodeName: 'SecureBoot', variableData: Buffer.from([1]) });
    expect(decodeEventData(EV.EV_EFI_VARIABLE_DRIVER_CONFIG, data, 2)).toEqual({
      kind: 'uefi-variable',
      variable: { variableName: EFI_GLOBAL_VARIABLE, unicodeName: 'SecureBoot', variableData: Buffer.from([1]), trailing: Buffer.alloc(0) },
    });
    const withTrailing = Buffer.concat([data, Buffer.from([0xaa, 0xbb])]);
    const decoded = decodeEventData(EV.EV_EFI_VARIABLE_AUTHORITY, withTrailing, 2);
    expect(decoded.kind === 'uefi-variable' && decoded.variable.trailing).toEqual(Buffer.from([0xaa, 0xbb]));
  });

  it('marks a UEFI_VARIABLE_DATA whose u64 lengths overrun the data undecodable, without allocating them', () => {
    const data = encodeUefiVariableData({ variableName: EFI_GLOBAL_VARIABLE, unicodeName: 'db', variableData: Buffer.alloc(3) });
    const hugeName = Buffer.from(data);
    u64(0x8000000000000000n).copy(hugeName, 16);
    expect(decodeEventData(EV.EV_EFI_VARIABLE_BOOT, hugeName, 2)).toEqual({
      kind: 'undecodable',
      reason:
        'UEFI_VARIABLE_DATA.UnicodeNameLength at offset 16: 9223372036854775808 UTF-16 characters do not fit the 7 byte(s) left (offset within the event data)',
    });
    const longData = Buffer.from(data);
    u64(4n).copy(longData, 24);
    expect(decodeEventData(EV.EV_EFI_VARIABLE_BOOT, longData, 2)).toMatchObject({
      kind: 'undecodable',
      reason: expect.stringContaining('UEFI_VARIABLE_DATA.VariableDataLength at offset 24: 4 byte(s) do not fit the 3 byte(s) left'),
    });
    expect(decodeEventData(EV.EV_EFI_VARIABLE_BOOT, Buffer.alloc(20), 2)).toMatchObject({ kind: 'undecodable' });
  });

  it('decodes UEFI_IMAGE_LOAD_EVENT with 64-bit and 32-bit UINTN and finds the file path', () => {
    const devicePath = filePathDevicePath('\\EFI\\BOOT\\BOOTX64.EFI');
    const wide = Buffer.concat([u64(0x7d225018n), u64(959848n), u64(0n), u64(BigInt(devicePath.length)), devicePath]);
    const decoded = decodeEventData(EV.EV_EFI_BOOT_SERVICES_APPLICATION, wide, 2);
    expect(decoded).toEqual({
      kind: 'uefi-image-load',
      image: {
        imageLocationInMemory: 0x7d225018n,
        imageLengthInMemory: 959848n,
        imageLinkTimeAddress: 0n,
        lengthOfDevicePath: devicePath.length,
        devicePath,
        filePath: '\\EFI\\BOOT\\BOOTX64.EFI',
        trailing: Buffer.alloc(0),
      },
    });
    const u32 = (v: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(v);
      return b;
    };
    const narrow = Buffer.concat([u64(0x1000n), u32(4096), u32(0), u32(devicePath.length), devicePath]);
    const decodedNarrow = decodeEventData(EV.EV_EFI_BOOT_SERVICES_DRIVER, narrow, 1);
    expect(decodedNarrow.kind === 'uefi-image-load' && decodedNarrow.image.imageLengthInMemory).toBe(4096n);
    // The same bytes read with 64-bit UINTN do not fit: undecodable, naming the field.
    expect(decodeEventData(EV.EV_EFI_BOOT_SERVICES_DRIVER, narrow, 2)).toMatchObject({
      kind: 'undecodable',
      reason: expect.stringMatching(/^UEFI_IMAGE_LOAD_EVENT\.LengthOfDevicePath at offset 24: /),
    });
  });

  it('gives no file path for a malformed device path instead of failing the event', () => {
    expect(devicePathFilePath(Buffer.from([0x04, 0x04, 0x02, 0x00]))).toBeUndefined();
    expect(devicePathFilePath(Buffer.from([0x04, 0x04, 0xff, 0x00, 0x41, 0x00]))).toBeUndefined();
    expect(devicePathFilePath(Buffer.alloc(0))).toBeUndefined();
  });

  it.each<[string, number, Buffer, EventData]>([
    ['EV_SEPARATOR 0', EV.EV_SEPARATOR, Buffer.alloc(4), { kind: 'separator', value: 0, error: false }],
    ['EV_SEPARATOR error', EV.EV_SEPARATOR, Buffer.alloc(4, 0xff), { kind: 'separator', value: 0xffffffff, error: true }],
    ['EV_SEPARATOR "WBCL" (Windows)', EV.EV_SEPARATOR, Buffer.from('WBCL'), { kind: 'separator', value: 0x4c434257, error: false }],
    ['EV_SEPARATOR of 5 bytes', EV.EV_SEPARATOR, Buffer.alloc(5), { kind: 'undecodable', reason: 'EV_SEPARATOR data is 5 byte(s), not 4' }],
    ['EV_NO_ACTION StartupLocality', EV.EV_NO_ACTION, Buffer.from('StartupLocality\0\x03', 'latin1'), { kind: 'startup-locality', locality: 3 }],
    [
      'EV_NO_ACTION StartupLocality too long',
      EV.EV_NO_ACTION,
      Buffer.from('StartupLocality\0\x03\x00', 'latin1'),
      { kind: 'undecodable', reason: 'StartupLocality event data is 18 byte(s), not 17' },
    ],
    ['EV_NO_ACTION SP800-155', EV.EV_NO_ACTION, Buffer.from('SP800-155 Event\0xyz', 'latin1'), { kind: 'no-action', signature: 'SP800-155 Event' }],
    ['EV_EFI_ACTION', EV.EV_EFI_ACTION, Buffer.from('Exit Boot Services Invocation'), { kind: 'text', text: 'Exit Boot Services Invocation' }],
    ['EV_EFI_ACTION binary', EV.EV_EFI_ACTION, Buffer.from([1, 2]), { kind: 'undecodable', reason: '2 byte(s) that are not a printable ASCII string' }],
    ['EV_S_CRTM_VERSION UCS-2', EV.EV_S_CRTM_VERSION, Buffer.from('GCE Virtual Firmware v1\0', 'utf16le'), { kind: 'text', text: 'GCE Virtual Firmware v1' }],
    ['EV_S_CRTM_VERSION empty UCS-2', EV.EV_S_CRTM_VERSION, Buffer.alloc(2), { kind: 'text', text: '' }],
    [
      'EV_S_CRTM_VERSION GUID',
      EV.EV_S_CRTM_VERSION,
      Buffer.from('1efb6b540c1d5540a4ad4ef4bf17b83a', 'hex'),
      { kind: 'undecodable', reason: '16 byte(s) that are not a NUL-terminated UCS-2 string' },
    ],
    ['EV_POST_CODE string', EV.EV_POST_CODE, Buffer.from('ACPI DATA'), { kind: 'text', text: 'ACPI DATA' }],
    [
      'EV_POST_CODE blob',
      EV.EV_POST_CODE,
      Buffer.concat([u64(0xffa20000n), u64(0x4e0000n)]),
      { kind: 'firmware-blob', blob: { blobBase: 0xffa20000n, blobLength: 0x4e0000n } },
    ],
    [
      'EV_EFI_PLATFORM_FIRMWARE_BLOB2',
      EV.EV_EFI_PLATFORM_FIRMWARE_BLOB2,
      Buffer.concat([Buffer.from([4]), Buffer.from('DXE\0'), u64(0x820000n), u64(0xe0000n)]),
      { kind: 'firmware-blob', blob: { blobDescription: 'DXE', blobBase: 0x820000n, blobLength: 0xe0000n } },
    ],
    [
      'EV_EFI_PLATFORM_FIRMWARE_BLOB short',
      EV.EV_EFI_PLATFORM_FIRMWARE_BLOB,
      Buffer.alloc(15),
      { kind: 'undecodable', reason: 'UEFI_PLATFORM_FIRMWARE_BLOB.BlobLength at offset 8: needs 8 byte(s), 7 left (offset within the event data)' },
    ],
    ['EV_IPL text', EV.EV_IPL, Buffer.from('grub_cmd: linux /vmlinuz\0'), { kind: 'text', text: 'grub_cmd: linux /vmlinuz' }],
    ['EV_IPL binary', EV.EV_IPL, Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0]), { kind: 'raw' }],
    ['EV_EFI_HANDOFF_TABLES', EV.EV_EFI_HANDOFF_TABLES, Buffer.alloc(24), { kind: 'raw' }],
  ])('%s', (_name, eventType, data, expected) => {
    expect(decodeEventData(eventType, data, 2)).toEqual(expected);
  });
});

describe('checkDigests: only data whose digest is recomputed is trusted', () => {
  const variable = encodeUefiVariableData({ variableName: EFI_GLOBAL_VARIABLE, unicodeName: 'BootOrder', variableData: Buffer.from([1, 0, 2, 0]) });
  const decoded = decodeEventData(EV.EV_EFI_VARIABLE_BOOT, variable, 2);
  const measuredOver = (bytes: Buffer) => [
    { hashAlg: SHA1, digest: digest(SHA1, bytes) },
    { hashAlg: SHA256, digest: digest(SHA256, bytes) },
  ];

  it('binds the whole data when every digest is H(data), for any event type', () => {
    expect(checkDigests(EV.EV_EFI_VARIABLE_BOOT, measuredOver(variable), variable, decoded)).toBe('event-data');
    expect(checkDigests(EV.EV_EVENT_TAG, measuredOver(Buffer.from('x')), Buffer.from('x'), { kind: 'raw' })).toBe('event-data');
  });

  it('binds only the value of an EV_EFI_VARIABLE_BOOT measured as H(VariableData), as EDK2 does', () => {
    expect(checkDigests(EV.EV_EFI_VARIABLE_BOOT, measuredOver(Buffer.from([1, 0, 2, 0])), variable, decoded)).toBe('variable-data');
    // Not for the other variable types: their PFP digest is of the whole UEFI_VARIABLE_DATA.
    expect(checkDigests(EV.EV_EFI_VARIABLE_DRIVER_CONFIG, measuredOver(Buffer.from([1, 0, 2, 0])), variable, decoded)).toBe('mismatch');
  });

  it('requires every bank to match, says mismatch where the PFP defines H(data), and not-recomputable elsewhere', () => {
    const oneBankWrong = [measuredOver(variable)[0]!, { hashAlg: SHA256, digest: Buffer.alloc(32) }];
    expect(checkDigests(EV.EV_EFI_VARIABLE_BOOT, oneBankWrong, variable, decoded)).toBe('mismatch');
    expect(checkDigests(EV.EV_SEPARATOR, measuredOver(Buffer.alloc(4)), Buffer.from([0, 0, 0, 1]), { kind: 'raw' })).toBe('mismatch');
    expect(checkDigests(EV.EV_EFI_BOOT_SERVICES_APPLICATION, measuredOver(Buffer.from('PE image')), Buffer.alloc(40), { kind: 'raw' })).toBe(
      'not-recomputable',
    );
    expect(checkDigests(EV.EV_SEPARATOR, [{ hashAlg: 0x00ff, digest: Buffer.alloc(7) }], Buffer.alloc(4), { kind: 'raw' })).toBe('not-recomputable');
    expect(checkDigests(EV.EV_NO_ACTION, measuredOver(Buffer.alloc(0)), Buffer.alloc(0), { kind: 'raw' })).toBe('not-extended');
  });
});
