import { CsvEncodingError, CsvLimitError, readCsv, type CsvReaderOptions, type CsvRecord } from './csv-reader';
import { InventoryHeaderError, parseHeader } from './columns';

async function read(chunks: (string | Buffer)[], limits?: number | CsvReaderOptions): Promise<CsvRecord[]> {
  async function* source(): AsyncGenerator<string | Buffer> {
    yield* chunks;
  }
  const out: CsvRecord[] = [];
  for await (const record of readCsv(source(), typeof limits === 'number' ? { maxRecordChars: limits } : limits)) {
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

  it('counts every character of a record against the limit, however it is split into fields and chunks', async () => {
    const record = Array.from({ length: 10 }, () => `"${'y'.repeat(20)}"`).join(',');
    await expect(read(['a\n', record.slice(0, 77), record.slice(77), '\n'], { maxRecordChars: 200 })).rejects.toMatchObject({
      name: 'CsvLimitError',
      limit: 'record-chars',
      line: 2,
      message: 'line 2: record longer than 200 characters (the limit per record)',
    });
    expect(await read(['a\n', record, '\n'], { maxRecordChars: 240 })).toHaveLength(2);
  });

  it('stops at the field limit, at the record that crosses it, before reading the rest of the line', async () => {
    let pulled = 0;
    async function* source(): AsyncGenerator<string> {
      yield 'a,b\n1,2\n"x\ny",';
      for (; pulled < 1000; pulled++) {
        yield ','.repeat(1000);
      }
    }
    const reading = (async () => {
      for await (const _ of readCsv(source(), { maxFieldsPerRecord: 64 })) {
        // drain
      }
    })();
    await expect(reading).rejects.toMatchObject({ limit: 'fields-per-record', line: 3, message: 'line 3: more than 64 fields in one record (the limit per record)' });
    expect(pulled).toBe(0);
    expect(await read(['a,b\n', `${','.repeat(63)}\n`], { maxFieldsPerRecord: 64 })).toHaveLength(2);
  });

  it('refuses more bytes than the file limit, counting bytes, not characters', async () => {
    await expect(read(['a,b\n', Buffer.from('é'.repeat(4)), '\n'], { maxFileBytes: 11 })).rejects.toMatchObject({ limit: 'file-bytes', max: 11 });
    expect(await read(['a,b\n', Buffer.from('é'.repeat(3)), '\n'], { maxFileBytes: 11 })).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['ééé'] },
    ]);
  });

  it('refuses bytes that are not UTF-8, naming the line of the first bad byte, wherever the chunks are cut', async () => {
    const bytes = Buffer.concat([Buffer.from('a,b\nok,1\n"multi\nline",2\nbad'), Buffer.from([0xe9]), Buffer.from(',3\n')]);
    for (let i = 1; i < bytes.length; i++) {
      await expect(read([bytes.subarray(0, i), bytes.subarray(i)])).rejects.toThrow(CsvEncodingError);
    }
    await expect(read([bytes])).rejects.toThrow('line 5: the file is not valid UTF-8; save it as UTF-8 ("CSV UTF-8" in a spreadsheet)');
    // a sequence cut at the end of the file
    await expect(read([Buffer.from('a\n'), Buffer.from([0xc3])])).rejects.toThrow(CsvEncodingError);
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

  it('lists at most 20 problems, then how many more', () => {
    let error: InventoryHeaderError | undefined;
    try {
      parseHeader(['serial', 'ek_pub_hash', ...Array.from({ length: 50 }, (_, i) => `x${i}`)]);
    } catch (caught) {
      error = caught as InventoryHeaderError;
    }
    expect(error?.problems).toHaveLength(21);
    expect(error?.problems[20]).toBe('and 30 more problems');
    expect(error?.message.length).toBeLessThan(4000);
  });
});
