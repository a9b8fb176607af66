import { finish } from './binary-list';
import { digestOf, digestSize, type ImaBank, type ImaHashAlgorithm } from './hash-algorithms';
import type { ImaEntry, ImaTemplateName } from './ima-entry';
import { encodeDigestNg, encodeFields, encodeLegacyTemplateData, templateHashInput } from './template-fields';

export interface ImaEntrySpec {
  readonly pcr?: number;
  readonly template: ImaTemplateName;
  readonly algorithm: ImaHashAlgorithm;
  readonly digest: Buffer;
  readonly name: string | Buffer;
  readonly signature?: Buffer;
  readonly buffer?: Buffer;
  /** Record a violation: all-zero template hash (and, as the kernel does, an all-zero digest is up to the caller). */
  readonly violation?: boolean;
}

/**
 * Makes an entry as the kernel would log it (template data, template hash under
 * `templateHashAlgorithm`, default sha1), with `raw` its binary record: for tests, the bench, and an
 * agent that converts an ASCII list to the binary form.
 */
export function buildImaEntry(spec: ImaEntrySpec, index = 0, templateHashAlgorithm: ImaBank = 'sha1'): ImaEntry {
  const name = typeof spec.name === 'string' ? Buffer.from(spec.name, 'utf8') : spec.name;
  const digest = { algorithm: spec.algorithm, digest: spec.digest };
  let templateData: Buffer;
  if (spec.template === 'ima') {
    templateData = encodeLegacyTemplateData(spec.digest, name);
  } else {
    const fields = [encodeDigestNg(digest), Buffer.concat([name, Buffer.alloc(1)])];
    if (spec.template === 'ima-sig') {
      fields.push(spec.signature ?? Buffer.alloc(0));
    } else if (spec.template === 'ima-buf') {
      fields.push(spec.buffer ?? Buffer.alloc(0));
    }
    templateData = encodeFields(fields);
  }
  const templateHash = spec.violation === true ? Buffer.alloc(digestSize(templateHashAlgorithm)) : digestOf(templateHashAlgorithm, templateHashInput({ templateName: spec.template, templateData, digest, name }));
  const pcr = spec.pcr ?? 10;
  const raw = marshalRecord(pcr, templateHash, spec.template, templateData);
  return finish(
    index,
    pcr,
    templateHash,
    spec.template,
    templateData,
    digest,
    name,
    spec.template === 'ima-sig' ? (spec.signature ?? Buffer.alloc(0)) : undefined,
    spec.template === 'ima-buf' ? (spec.buffer ?? Buffer.alloc(0)) : undefined,
    raw,
  );
}

/** The binary_runtime_measurements record of an entry (little-endian; no data length for `ima`). */
export function marshalBinaryEntry(entry: ImaEntry): Buffer {
  return marshalRecord(entry.pcr, entry.templateHash, entry.templateName, entry.templateData);
}

function marshalRecord(pcr: number, templateHash: Buffer, template: ImaTemplateName, templateData: Buffer): Buffer {
  const legacy = template === 'ima';
  const out = Buffer.alloc(4 + templateHash.length + 4 + template.length + (legacy ? 0 : 4) + templateData.length);
  let at = out.writeUInt32LE(pcr, 0);
  at += templateHash.copy(out, at);
  at = out.writeUInt32LE(template.length, at);
  at += out.write(template, at, 'latin1');
  if (!legacy) {
    at = out.writeUInt32LE(templateData.length, at);
  }
  templateData.copy(out, at);
  return out;
}

/** The ascii_runtime_measurements line of an entry (without the newline). */
export function formatAsciiEntry(entry: ImaEntry): string {
  const digest = entry.templateName === 'ima' ? entry.digest.digest.toString('hex') : `${entry.digest.algorithm}:${entry.digest.digest.toString('hex')}`;
  const parts = [String(entry.pcr), entry.templateHash.toString('hex'), entry.templateName, digest, entry.path];
  if (entry.templateName === 'ima-sig') {
    parts.push((entry.signature ?? Buffer.alloc(0)).toString('hex'));
  } else if (entry.templateName === 'ima-buf') {
    parts.push((entry.buffer ?? Buffer.alloc(0)).toString('hex'));
  }
  return parts.join(' ');
}
