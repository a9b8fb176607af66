import { finish, type ImaListOptions } from './binary-list';
import { digestSize, isImaHashAlgorithm } from './hash-algorithms';
import { type ImaEntry, type ImaFileDigest, IMA_TEMPLATE_NAMES, type ImaTemplateName } from './ima-entry';
import { ImaParseError } from './ima-parse-error';
import { checkName, encodeDigestNg, encodeFields, encodeLegacyTemplateData, IMA_EVENT_NAME_LEN_MAX, IMA_LEGACY_DIGEST_SIZE, printable } from './template-fields';

/** One line of ascii_runtime_measurements is at most this long (a 1 MiB ima-buf in hex, and the rest). */
const MAX_LINE = 2 * (1 << 20) + 8192;

/**
 * Parses ascii_runtime_measurements (security/integrity/ima/ima_fs.c, ima_ascii_measurements_show):
 * one entry per line, `PCR template-hash template-name` and then each template field after a space —
 * d-ng as `<algo>:<hex>` (the legacy `d` as bare hex), the name as is (the kernel replaced its spaces
 * with '_' when it measured, ima_write_template_field_data), sig and buf as hex, possibly empty (the
 * separating space is still printed). The template data is rebuilt from the fields, so the template
 * hash can be checked and the PCR extends computed exactly as for the binary list.
 */
export function parseAsciiMeasurementList(input: Uint8Array | string, options: ImaListOptions = {}): ImaEntry[] {
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const hashSize = digestSize(options.templateHashAlgorithm ?? 'sha1');
  const first = options.firstIndex ?? 0;
  const entries: ImaEntry[] = [];
  let at = 0;
  while (at < bytes.length) {
    let end = bytes.indexOf(0x0a, at);
    const index = first + entries.length;
    if (end === -1) {
      end = bytes.length;
    }
    if (end - at > MAX_LINE) {
      throw new ImaParseError(index, '(line)', at, `line longer than ${MAX_LINE} bytes`);
    }
    entries.push(parseLine(bytes.subarray(at, end), index, at, hashSize));
    at = end + 1;
  }
  return entries;
}

function parseLine(line: Buffer, index: number, lineAt: number, hashSize: number): ImaEntry {
  const tokens: Buffer[] = [];
  const starts: number[] = [];
  let from = 0;
  for (;;) {
    const space = line.indexOf(0x20, from);
    starts.push(lineAt + from);
    if (space === -1) {
      tokens.push(line.subarray(from));
      break;
    }
    tokens.push(line.subarray(from, space));
    from = space + 1;
    if (tokens.length > 6) {
      throw new ImaParseError(index, '(line)', lineAt + from, 'more fields than any supported template has');
    }
  }
  const fail = (field: string, token: number, reason: string): never => {
    throw new ImaParseError(index, field, starts[token] ?? lineAt, reason);
  };
  if (tokens.length < 5) {
    fail('(line)', 0, `expected "PCR template-hash template-name fields…", got ${tokens.length} field(s)`);
  }
  const pcrText = tokens[0]!.toString('latin1');
  if (!/^[0-9]{1,10}$/.test(pcrText) || Number(pcrText) > 0xffffffff) {
    fail('pcr', 0, `"${printable(pcrText)}" is not a PCR number`);
  }
  const templateHash = hexOf(tokens[1]!, hashSize, () => fail('template_hash', 1, `expected ${hashSize * 2} hex digits`));
  const templateText = tokens[2]!.toString('latin1');
  if (!(IMA_TEMPLATE_NAMES as readonly string[]).includes(templateText)) {
    fail('template_name', 2, `unsupported template "${printable(templateText)}"`);
  }
  const template = templateText as ImaTemplateName;
  const expected = template === 'ima' || template === 'ima-ng' ? 5 : 6;
  // ima-sig and ima-buf print a space before their last field even when it is empty; a line cut
  // after the name (trailing whitespace trimmed by some tool) carries the same empty field.
  if (tokens.length !== expected && !(expected === 6 && tokens.length === 5)) {
    fail('(line)', Math.min(tokens.length - 1, expected), `template ${template} has ${expected - 3} field(s), the line ${tokens.length - 3}`);
  }
  const name = tokens[4]!;
  if (name.length === 0) {
    fail(template === 'ima' ? 'n' : 'n-ng', 4, 'empty name');
  }
  try {
    checkName(name, 0, name.length, template === 'ima' ? 'n' : 'n-ng', starts[4]!);
  } catch (error) {
    fail(template === 'ima' ? 'n' : 'n-ng', 4, (error as Error).message);
  }
  const pcr = Number(pcrText);
  const raw = line;
  if (template === 'ima') {
    if (name.length > IMA_EVENT_NAME_LEN_MAX) {
      fail('n', 4, `${name.length} bytes exceeds IMA_EVENT_NAME_LEN_MAX (${IMA_EVENT_NAME_LEN_MAX})`);
    }
    const digest = hexOf(tokens[3]!, IMA_LEGACY_DIGEST_SIZE, () => fail('d', 3, `expected ${IMA_LEGACY_DIGEST_SIZE * 2} hex digits`));
    return finish(index, pcr, templateHash, template, encodeLegacyTemplateData(digest, name), { algorithm: 'sha1', digest }, name, undefined, undefined, raw);
  }
  const digest = digestNg(tokens[3]!, (reason) => fail('d-ng', 3, reason));
  const fields = [encodeDigestNg(digest), Buffer.concat([name, Buffer.alloc(1)])];
  let extra: Buffer | undefined;
  if (template !== 'ima-ng') {
    const token = tokens[5] ?? Buffer.alloc(0);
    const field = template === 'ima-sig' ? 'sig' : 'buf';
    if (token.length % 2 !== 0) {
      fail(field, 5, 'odd number of hex digits');
    }
    extra = hexOf(token, token.length / 2, () => fail(field, 5, 'not hex'));
    fields.push(extra);
  }
  return finish(
    index,
    pcr,
    templateHash,
    template,
    encodeFields(fields),
    digest,
    name,
    template === 'ima-sig' ? extra : undefined,
    template === 'ima-buf' ? extra : undefined,
    raw,
  );
}

function digestNg(token: Buffer, fail: (reason: string) => never): ImaFileDigest {
  const colon = token.indexOf(0x3a);
  if (colon <= 0) {
    return fail('expected "<algorithm>:<hex digest>"');
  }
  const algorithm = token.toString('latin1', 0, colon);
  if (!isImaHashAlgorithm(algorithm)) {
    return fail(`unsupported digest algorithm "${printable(algorithm)}"`);
  }
  const size = digestSize(algorithm);
  return { algorithm, digest: hexOf(token.subarray(colon + 1), size, () => fail(`a ${algorithm} digest is ${size * 2} hex digits`)) };
}

/** Strict hex of exactly `size` bytes (Buffer.from(…, 'hex') stops silently at a bad digit). */
function hexOf(token: Buffer, size: number, fail: () => never): Buffer {
  if (token.length !== size * 2) {
    return fail();
  }
  for (let i = 0; i < token.length; i += 1) {
    const c = token[i]!;
    if (!((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46))) {
      return fail();
    }
  }
  return Buffer.from(token.toString('latin1'), 'hex');
}
