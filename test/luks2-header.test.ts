/**
 * Boot unlock reads the LUKS2 header itself (apps/agent/src/install/luks2-header.ts) when it is
 * plainly well, and leaves everything else to cryptsetup. Against real images made by cryptsetup:
 * the JSON read equals `cryptsetup luksDump --dump-json-metadata`'s; a damaged copy of either header,
 * copies of different seqids (a write caught half way), LUKS1, a file that is not LUKS and a path
 * that does not exist all give undefined (ask cryptsetup), never a wrong answer.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readLuks2Json } from '../apps/agent/src/install/luks2-header';
import { luksImage } from './support/rackseal-disk';

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'rackseal-luks2-header-'));
  chmodSync(root, 0o700);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const cryptsetupJson = (image: string): unknown => JSON.parse(execFileSync('cryptsetup', ['luksDump', '--dump-json-metadata', image]).toString('utf8'));

/** XORs one byte of the file at `offset`. */
function flipByte(path: string, offset: number): void {
  const fd = openSync(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, offset);
    byte[0] = byte[0]! ^ 0x01;
    writeSync(fd, byte, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}

/** hdr_size of the image's primary header (u64 at offset 8). */
function hdrSize(path: string): number {
  const fd = openSync(path, 'r');
  try {
    const bytes = Buffer.alloc(16);
    readSync(fd, bytes, 0, 16, 0);
    return Number(bytes.readBigUInt64BE(8));
  } finally {
    closeSync(fd);
  }
}

describe('readLuks2Json (LUKS2 header read without cryptsetup)', () => {
  it('a well header: exactly the JSON cryptsetup prints, tokens included', async () => {
    const { image } = luksImage(root);
    execFileSync('cryptsetup', ['token', 'import', '--json-file=-', '--token-id', '3', image], { input: JSON.stringify({ type: 'rackseal', keyslots: [], format: 1, secret: 'root-disk' }) });
    const json = await readLuks2Json(image);
    expect(json).toEqual(cryptsetupJson(image));
    expect((json?.tokens as Record<string, unknown>)['3']).toEqual({ type: 'rackseal', keyslots: [], format: 1, secret: 'root-disk' });
  });

  it('a damaged byte in the primary or the secondary JSON area: undefined (cryptsetup decides), though cryptsetup still reads it', async () => {
    for (const copy of ['primary', 'secondary'] as const) {
      const { image } = luksImage(root);
      const size = hdrSize(image);
      flipByte(image, (copy === 'primary' ? 0 : size) + 4096 + 2); // inside the JSON text
      expect(await readLuks2Json(image)).toBeUndefined();
      expect(cryptsetupJson(image)).toHaveProperty('keyslots');
    }
  });

  it('copies of different seqids (a write caught between the two): undefined', async () => {
    const { image } = luksImage(root);
    const size = hdrSize(image);
    const before = Buffer.alloc(2 * size);
    let fd = openSync(image, 'r');
    readSync(fd, before, 0, before.length, 0);
    closeSync(fd);
    execFileSync('cryptsetup', ['token', 'import', '--json-file=-', '--token-id', '1', image], { input: JSON.stringify({ type: 'other', keyslots: [] }) });
    // The new primary with the old secondary: each checksum is right, the seqids differ.
    fd = openSync(image, 'r+');
    writeSync(fd, before, size, size, size);
    closeSync(fd);
    expect(await readLuks2Json(image)).toBeUndefined();
  });

  it('LUKS1, a file that is not LUKS, a path that does not exist: undefined', async () => {
    const luks1 = join(root, 'luks1.img');
    writeFileSync(luks1, Buffer.alloc(0));
    execFileSync('truncate', ['-s', '8M', luks1]);
    const key = join(root, 'luks1.key');
    writeFileSync(key, randomBytes(32), { mode: 0o600 });
    execFileSync('cryptsetup', ['luksFormat', '--batch-mode', '--type', 'luks1', '--pbkdf-force-iterations', '1000', '--key-file', key, luks1]);
    expect(await readLuks2Json(luks1)).toBeUndefined();
    const plain = join(root, 'plain.img');
    writeFileSync(plain, randomBytes(1 << 16));
    expect(await readLuks2Json(plain)).toBeUndefined();
    expect(await readLuks2Json(join(root, 'absent.img'))).toBeUndefined();
  });
});
