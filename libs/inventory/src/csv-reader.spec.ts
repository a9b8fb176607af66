import { CsvLimitError, readCsv, type CsvRecord } from './csv-reader';
import { InventoryHeaderError, parseHeader } from './columns';

async function read(chunks: (string | Buffer)[], maxRecordChars?: number): Promise<CsvRecord[]> {
  async function* source(): AsyncGenerator<string | Buffer> {
    yield* chunks;
  }
  const out: CsvRecord[] = [];
  for await (const record of readCsv(source(), { maxRecordChars })) {
    out.push(record);
  }
  return out;
}

/** Every way of cutting `text` into two chunks must read the same. */
async function readAllSplits(text: string): Promise<CsvRecord[]> {
  const whole = await read([Buffer.from(text, 'utf8')]);
  const bytes = Buffer.from(text, 'utf8');
  for (let i = 1; i < bytes.length; i++) {
    expect(await read([bytes.subarray(0, i), bytes.subarray(i)])).toEqual(whole);
  }
  return whole;
}

describe('readCsv', () => {
  it('reads fields, quotes, escaped quotes, CRLF and embedded line breaks with the start line of each record', async () => {
    const text = 'a,b,c\r\n1,"two, too","say ""hi"""\r\n"multi\r\nline",x,\n\n3,,"é"';
    expect(await readAllSplits(text)).toEqual([
      { line: 1, fields: ['a', 'b', 'c'] },
      { line: 2, fields: ['1', 'two, too', 'say "hi"'] },
      { line: 3, fields: ['multi\r\nline', 'x', ''] },
      { line: 6, fields: ['3', '', 'é'] },
    ]);
  });

  it('drops a UTF-8 BOM, counts lone CR line ends, keeps injection strings as plain data', async () => {
    const text = "\uFEFFserial,x\r'; DROP TABLE machines; --,\"=cmd|' /C calc'!A0\"\n";
    expect(await readAllSplits(text)).toEqual([
      { line: 1, fields: ['serial', 'x'] },
      { line: 2, fields: ["'; DROP TABLE machines; --", "=cmd|' /C calc'!A0"] },
    ]);
  });

  it('reports malformed records with their line and carries on at the next line', async () => {
    const text = 'a,b\nx"y,1\n"ok"z,2\ngood,3\n"never closed,4\nlost,5\n';
    expect(await readAllSplits(text)).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: [], error: 'a quote inside an unquoted field (field 1); quote the whole field and double the quote' },
      { line: 3, fields: [], error: 'text after the closing quote of field 1' },
      { line: 4, fields: ['good', '3'] },
      { line: 5, fields: [], error: 'a quoted field is never closed' },
    ]);
  });

  it('refuses a record over the size limit instead of buffering it', async () => {
    await expect(read(['a,b\n', 'x'.repeat(100), ',1\n'], 50)).rejects.toThrow(CsvLimitError);
  });
});

describe('parseHeader', () => {
  it('maps known columns case-insensitively', () => {
    expect(parseHeader([' Serial ', 'ek_cert', 'GROUP'])).toEqual({ serial: 0, ek_cert: 1, group: 2, count: 3 });
  });

  it('lists every problem: unknown, repeated, missing', () => {
    expect(() => parseHeader(['serial', 'serial', 'hostnme'])).toThrow(InventoryHeaderError);
    try {
      parseHeader(['hostname', 'hostname', 'colour', '']);
    } catch (error) {
      expect((error as InventoryHeaderError).problems).toEqual([
        'column "hostname" appears twice',
        'unknown column "colour" (known: serial, asset_tag, hostname, group, ek_cert, ek_pub_hash, ek_intermediates)',
        'column 4 has no name',
        'missing column "serial"',
        'missing column "ek_cert" or "ek_pub_hash" (one is required)',
      ]);
    }
  });
});
