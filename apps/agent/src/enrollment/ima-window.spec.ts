import { createHash } from 'node:crypto';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImaEntry, type ImaBank, marshalBinaryEntry } from '@rackseal/ima';
import { readImaWindow } from './ima-window';

const sha256 = (text: string) => createHash('sha256').update(text).digest();
/** One list of three files as the kernel writes it with `algorithm` template hashes. */
const listOf = (algorithm: ImaBank) =>
  Buffer.concat(['/usr/bin/a', '/usr/bin/b', '/usr/bin/c'].map((name, i) => marshalBinaryEntry(buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha256(name), name }, i, algorithm))));
const tail = (list: Buffer, algorithm: ImaBank, from: number) => {
  const entry = listOf(algorithm).length / 3;
  return list.subarray(from * entry).toString('base64');
};

describe('readImaWindow: which list the agent sends', () => {
  let dir: string;
  let configured: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rackseal-ima-window-'));
    configured = join(dir, 'binary_runtime_measurements');
    await writeFile(configured, listOf('sha1'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("the per-bank list of the quote's bank beside the configured one, its algorithm named", async () => {
    await writeFile(`${configured}_sha256`, listOf('sha256'));
    expect(await readImaWindow(configured, 1, 'sha256')).toEqual({ firstEntry: 1, entries: tail(listOf('sha256'), 'sha256', 1), templateHashAlgorithm: 'sha256' });
  });

  it('no per-bank list of that bank (an older kernel): the configured list as it is, no algorithm named', async () => {
    await writeFile(`${configured}_sha384`, listOf('sha384'));
    expect(await readImaWindow(configured, 0, 'sha256')).toEqual({ firstEntry: 0, entries: listOf('sha1').toString('base64') });
    expect(await readImaWindow(configured, 0)).toEqual({ firstEntry: 0, entries: listOf('sha1').toString('base64') });
  });

  it('a bank the server names that is not an IMA bank never becomes part of a path', async () => {
    await writeFile(`${configured}_sm3_256`, listOf('sha256'));
    for (const bank of ['sm3_256', '../binary_runtime_measurements_sha256', 'SHA256', '']) {
      expect(await readImaWindow(configured, 0, bank)).toEqual({ firstEntry: 0, entries: listOf('sha1').toString('base64') });
    }
  });

  it('a configured list that is itself a per-bank one is read and named as its name says', async () => {
    const perBank = `${configured}_sha384`;
    await writeFile(perBank, listOf('sha384'));
    expect(await readImaWindow(perBank, 2, 'sha256')).toEqual({ firstEntry: 2, entries: tail(listOf('sha384'), 'sha384', 2), templateHashAlgorithm: 'sha384' });
  });

  it('a per-bank list that does not parse as its bank is refused, named', async () => {
    await writeFile(`${configured}_sha512`, listOf('sha1'));
    await expect(readImaWindow(configured, 0, 'sha512')).rejects.toThrow(`the IMA list ${configured}_sha512 does not parse`);
  });

  it('a per-bank list that is a symbolic link (the kernel writes files, not links) is refused unread, named', async () => {
    // A path the operator never configured, derived from the server's bank: planted beside the list,
    // it would have the agent read (as root) and parse whatever it points at.
    const elsewhere = join(dir, 'elsewhere');
    await writeFile(elsewhere, listOf('sha256'));
    await symlink(elsewhere, `${configured}_sha256`);
    await expect(readImaWindow(configured, 0, 'sha256')).rejects.toThrow(`the IMA list ${configured}_sha256 is a symbolic link`);
  });
});
