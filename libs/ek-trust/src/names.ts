import { compareSetOfEncodings, DerCursor, decodeOid, decodeString, DerError, TAG, type Tlv } from './der';
import { NAME_ATTRIBUTE_LABELS } from './oids';
import { findUnprintable } from './printable';

/** One AttributeTypeAndValue of a Name (RFC 5280 §4.1.2.4). */
export interface NameAttribute {
  readonly oid: string;
  /** The value's ASN.1 tag (UTF8String, PrintableString, …). */
  readonly tag: number;
  /** The value as text, or undefined when it is not a directory string. */
  readonly text: string | undefined;
  /** The value's TLV, exactly as encoded. */
  readonly raw: Buffer;
}

/** An X.501 Name: the original bytes, its RDNs in encoded order, a display form and a comparison key. */
export interface X509Name {
  readonly raw: Buffer;
  readonly rdns: readonly (readonly NameAttribute[])[];
  /** `C=DE, O=Infineon Technologies AG, CN=…` in encoded order; multi-valued RDNs joined by ` + `. */
  readonly text: string;
  /** Equal for names that RFC 5280 §7.1 says match (see `nameKey`). */
  readonly key: string;
  /** Some multi-valued RDN's SET is not in DER order (Nuvoton); its bytes are kept as they are. */
  readonly unsortedSet: boolean;
}

/** Parses a Name (SEQUENCE OF SET OF AttributeTypeAndValue) from its TLV. */
export function parseName(base: Buffer, tlv: Tlv, field: string, flags?: { nonMinimalLength: boolean }): X509Name {
  const rdnCursor = DerCursor.over(base, tlv, field, flags);
  const rdns: NameAttribute[][] = [];
  let unsortedSet = false;
  while (!rdnCursor.done) {
    const setTlv = rdnCursor.next(`rdn[${rdns.length}]`, TAG.SET);
    const setCursor = DerCursor.over(base, setTlv, `${field}.rdn[${rdns.length}]`, rdnCursor.flags);
    const attributes: NameAttribute[] = [];
    const encodings: Buffer[] = [];
    while (!setCursor.done) {
      const atvTlv = setCursor.next(`atv[${attributes.length}]`, TAG.SEQUENCE);
      encodings.push(atvTlv.raw);
      const atv = DerCursor.over(base, atvTlv, `${field}.atv`, rdnCursor.flags);
      const oid = decodeOid(atv.next('type', TAG.OID), `${field}.atv.type`);
      const value = atv.next('value');
      atv.end();
      attributes.push({ oid, tag: value.tag, text: decodeString(value), raw: value.raw });
    }
    if (attributes.length === 0) {
      throw new DerError(`${field}.rdn[${rdns.length}]`, setTlv.start, 'empty RelativeDistinguishedName');
    }
    for (let i = 1; i < encodings.length; i++) {
      if (compareSetOfEncodings(encodings[i - 1]!, encodings[i]!) > 0) {
        unsortedSet = true;
      }
    }
    rdns.push(attributes);
  }
  // Formatted and normalised on first use: a bulk import reads thousands of names it never prints.
  let text: string | undefined;
  let key: string | undefined;
  return {
    raw: tlv.raw,
    rdns,
    get text(): string {
      text ??= formatName(rdns);
      return text;
    },
    get key(): string {
      key ??= nameKey(rdns);
      return key;
    },
    unsortedSet,
  };
}

const SPECIAL = new Set(['\\', ',', '+', '"', '<', '>', ';', '=']);

function needsEscape(text: string): boolean {
  if (text.startsWith(' ') || text.startsWith('#') || text.endsWith(' ')) {
    return true;
  }
  for (let i = 0; i < text.length; i++) {
    if (SPECIAL.has(text[i]!)) {
      return true;
    }
  }
  return findUnprintable(text) !== undefined;
}

function escapeValue(text: string): string {
  if (!needsEscape(text)) {
    return text;
  }
  // RFC 4514 §2.4, enough to keep the display unambiguous.
  return text
    .replace(/[\\,+"<>;=]/g, (c) => `\\${c}`)
    .replace(/^[ #]/, (c) => `\\${c}`)
    .replace(/ $/, '\\ ')
    .split('')
    .map((c) => (findUnprintable(c) !== undefined ? hexPairs(c) : c))
    .join('');
}

/** RFC 4514 §2.4 hexpairs: each UTF-8 octet of the character as `\xx`. */
function hexPairs(c: string): string {
  return [...Buffer.from(c, 'utf8')].map((b) => `\\${b.toString(16).padStart(2, '0')}`).join('');
}

function formatAttribute(attribute: NameAttribute): string {
  const label = NAME_ATTRIBUTE_LABELS[attribute.oid] ?? attribute.oid;
  const value = attribute.text !== undefined ? escapeValue(attribute.text) : `#${attribute.raw.toString('hex')}`;
  return `${label}=${value}`;
}

export function formatName(rdns: readonly (readonly NameAttribute[])[]): string {
  return rdns.map((rdn) => rdn.map(formatAttribute).join(' + ')).join(', ');
}

/**
 * RFC 5280 §7.1 name matching, simplified the way OpenSSL does it: RDNs in order; inside an RDN the
 * attributes as a set (so an unsorted SET still matches its sorted twin); directory strings compared
 * case-insensitively with white space trimmed and runs collapsed; other values by their bytes. A
 * name match only proposes an issuer — a signature decides (chain.ts).
 */
function nameKey(rdns: readonly (readonly NameAttribute[])[]): string {
  return JSON.stringify(
    rdns.map((rdn) =>
      rdn
        .map((a) => `${a.oid}=${a.text !== undefined ? foldValue(a.text) : `#${a.raw.toString('hex')}`}`)
        .sort(),
    ),
  );
}

function foldValue(text: string): string {
  // NFKC only matters beyond ASCII, and is the slow part.
  const folded = /^[\x20-\x7e]*$/.test(text) ? text : text.normalize('NFKC');
  return folded.trim().replace(/\s+/g, ' ').toLowerCase();
}

/** The first value of `oid` anywhere in the name, as text. */
export function nameAttribute(name: X509Name, oid: string): string | undefined {
  for (const rdn of name.rdns) {
    for (const attribute of rdn) {
      if (attribute.oid === oid && attribute.text !== undefined) {
        return attribute.text;
      }
    }
  }
  return undefined;
}
