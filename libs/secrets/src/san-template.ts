import { MAX_SAN_TEMPLATE_LENGTH, SAN_PLACEHOLDERS } from '@rackseal/api-contracts';
import { SecretError } from './secret-errors';

/** The values a SAN template's placeholders take for one machine. */
export interface SanValues {
  readonly hostname: string | null;
  readonly serial: string;
  readonly group: string | null;
  readonly machineId: string;
}

const PLACEHOLDER = /\{([^{}]*)\}/g;

/**
 * A DNS name as a certificate's dNSName may carry it (RFC 5280 §4.2.1.6, "preferred name syntax" of
 * RFC 1034 §3.5 as relaxed by RFC 1123 §2.1): labels of 1-63 letters, digits and hyphens, not
 * starting or ending with a hyphen, at most 253 characters in all. A leading `*.` wildcard is
 * refused: a per-machine certificate names its machine.
 */
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function isDnsName(name: string): boolean {
  return name.length >= 1 && name.length <= 253 && name.split('.').every((label) => LABEL.test(label));
}

/**
 * Checks a template once, at create: only known placeholders, balanced braces, and the literal text
 * around them DNS-shaped (rendered with `a` for every placeholder, it must be a DNS name). The
 * rendering per machine is checked again (a hostname may not be a DNS label).
 */
export function checkSanTemplate(template: unknown, field: string): string {
  if (typeof template !== 'string' || template.length === 0 || template.length > MAX_SAN_TEMPLATE_LENGTH) {
    throw new SecretError('secret.invalid-san-template', `${field} must be a text of 1-${MAX_SAN_TEMPLATE_LENGTH} characters`);
  }
  const stripped = template.replace(PLACEHOLDER, (whole, name: string) => {
    if (!(SAN_PLACEHOLDERS as readonly string[]).includes(name)) {
      throw new SecretError('secret.invalid-san-template', `${field}: unknown placeholder {${printable(name)}}; the placeholders are ${SAN_PLACEHOLDERS.map((p) => `{${p}}`).join(' ')}`);
    }
    return 'a';
  });
  if (/[{}]/.test(stripped)) {
    throw new SecretError('secret.invalid-san-template', `${field}: unbalanced brace`);
  }
  if (!isDnsName(stripped)) {
    throw new SecretError('secret.invalid-san-template', `${field} does not render to a DNS name (labels of letters, digits and hyphens, lowercase, separated by dots)`);
  }
  return template;
}

/**
 * The template for one machine: placeholders replaced (serials and hostnames lowercased: DNS names
 * compare case-insensitively, RFC 4343), the result checked as a DNS name; undefined when it is not
 * one (a machine without a hostname, a serial with a `/`), which the caller refuses naming the machine.
 */
export function renderSan(template: string, values: SanValues): string | undefined {
  let missing = false;
  const rendered = template.replace(PLACEHOLDER, (_, name: string) => {
    const value = values[name as keyof SanValues];
    if (value === null || value === undefined) {
      missing = true;
      return '';
    }
    return value.toLowerCase();
  });
  return !missing && isDnsName(rendered) ? rendered : undefined;
}

function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 40);
}
