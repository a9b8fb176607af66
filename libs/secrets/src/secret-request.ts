import {
  DEFAULT_OPAQUE_SIZE,
  DEFAULT_DISK_ROTATE_EVERY_DAYS,
  DEFAULT_RENEW_BEFORE_DAYS,
  DEFAULT_VALIDITY_DAYS,
  DISK_KEY_SIZES,
  GROUP_PATTERN,
  GROUP_RULE,
  MAX_OPAQUE_BYTES,
  MAX_ROTATE_EVERY_DAYS,
  MAX_SAN_TEMPLATES,
  MAX_VALIDITY_DAYS,
  MIN_VALIDITY_DAYS,
  SECRET_BINDINGS,
  SECRET_KEY_ALGORITHMS,
  SECRET_KINDS,
  SECRET_NAME_PATTERN,
  SECRET_NAME_RULE,
  type SecretBinding,
  type SecretKeyAlgorithm,
  type SecretKind,
  type SecretParameters,
} from '@rackseal/api-contracts';
import { SecretBytes } from '@rackseal/config/secret-bytes';
import { checkSanTemplate } from './san-template';
import { SecretError } from './secret-errors';

export interface TlsParameters {
  readonly sans: readonly string[];
  readonly validityDays: number;
  readonly renewBeforeDays: number;
  readonly keyAlgorithm: SecretKeyAlgorithm;
}

export interface KubeletParameters {
  readonly server: string;
  readonly clusterName: string;
  readonly validityDays: number;
  readonly renewBeforeDays: number;
  readonly keyAlgorithm: SecretKeyAlgorithm;
}

/** A create request after validation. `value` is an uploaded opaque value, kept as SecretBytes. */
export interface ParsedCreateRequest {
  readonly name: string;
  readonly kind: SecretKind;
  readonly target: { readonly group: string } | { readonly machine: string };
  readonly binding: SecretBinding;
  readonly parameters: SecretParameters;
  readonly value?: SecretBytes;
}

/** What a refused request's audit record may say about it: names only, each when well-formed. */
export function describeRequest(body: unknown): { name: string | null; kind: string | null } {
  const o = isObject(body) ? body : {};
  return {
    name: typeof o.name === 'string' && SECRET_NAME_PATTERN.test(o.name) ? o.name : null,
    kind: typeof o.kind === 'string' && (SECRET_KINDS as readonly string[]).includes(o.kind) ? o.kind : null,
  };
}

export function checkSecretName(name: unknown): string {
  if (typeof name !== 'string' || !SECRET_NAME_PATTERN.test(name)) {
    throw new SecretError('secret.invalid-name', SECRET_NAME_RULE);
  }
  return name;
}

/**
 * Validates POST /v1/secrets as a whole (unknown fields refused, each problem naming its field),
 * before anything is read or written. The opaque value is decoded into SecretBytes here and appears
 * in no message.
 */
export function parseCreateRequest(body: unknown): ParsedCreateRequest {
  if (!isObject(body)) {
    throw new SecretError('secret.invalid', 'the body must be a JSON object');
  }
  onlyFields(body, ['name', 'kind', 'target', 'binding', 'parameters', 'value'], '');
  const name = checkSecretName(body.name);
  if (typeof body.kind !== 'string' || !(SECRET_KINDS as readonly string[]).includes(body.kind)) {
    throw new SecretError('secret.invalid', `kind must be one of ${SECRET_KINDS.join(', ')}`);
  }
  const kind = body.kind as SecretKind;
  if (typeof body.binding !== 'string' || !(SECRET_BINDINGS as readonly string[]).includes(body.binding)) {
    throw new SecretError('secret.invalid-binding', `binding must be one of ${SECRET_BINDINGS.join(', ')}`);
  }
  const binding = body.binding as SecretBinding;
  const target = parseTarget(body.target);
  const parameters = parseParameters(kind, body.parameters ?? {});
  if (body.value !== undefined && kind !== 'opaque') {
    throw new SecretError('secret.invalid', `value: only an opaque secret takes a value (a ${kind} secret's material is generated per machine)`);
  }
  const value = body.value === undefined ? undefined : parseValue(body.value);
  if (value !== undefined && (body.parameters as Record<string, unknown> | undefined)?.size !== undefined) {
    throw new SecretError('secret.invalid', 'parameters.size: an uploaded value has its own size; give value or size, not both');
  }
  return { name, kind, target, binding, parameters, ...(value === undefined ? {} : { value }) };
}

/** POST /v1/secrets/:name/versions: `{}` or, for opaque, `{ value }`; `group` names the target group the operator expects. */
export function parseRotateRequest(body: unknown, kind: SecretKind): { value?: SecretBytes; group?: string; fromVersion?: number } {
  if (body === undefined || body === null) {
    return {};
  }
  if (!isObject(body)) {
    throw new SecretError('secret.invalid', 'the body must be a JSON object');
  }
  onlyFields(body, ['value', 'group', 'fromVersion'], '');
  if (body.group !== undefined && (typeof body.group !== 'string' || !GROUP_PATTERN.test(body.group))) {
    throw new SecretError('secret.invalid', GROUP_RULE);
  }
  if (body.fromVersion !== undefined && (typeof body.fromVersion !== 'number' || !Number.isSafeInteger(body.fromVersion) || body.fromVersion < 1)) {
    throw new SecretError('secret.invalid', 'fromVersion must be a whole number from 1');
  }
  const group = {
    ...(body.group === undefined ? {} : { group: body.group as string }),
    ...(body.fromVersion === undefined ? {} : { fromVersion: body.fromVersion as number }),
  };
  if (body.value === undefined) {
    return group;
  }
  if (kind !== 'opaque') {
    throw new SecretError('secret.invalid', `value: only an opaque secret takes a value (a ${kind} secret's material is generated per machine)`);
  }
  return { value: parseValue(body.value), ...group };
}

function parseValue(value: unknown): SecretBytes {
  // Standard base64 only (RFC 4648 §4), so one value has one spelling; never echoed.
  if (typeof value !== 'string' || value.length === 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) {
    throw new SecretError('secret.invalid', 'value must be the base64 (RFC 4648 §4, padded) of 1 or more bytes');
  }
  const bytes = Buffer.from(value, 'base64');
  if (bytes.length === 0 || bytes.length > MAX_OPAQUE_BYTES) {
    bytes.fill(0);
    throw new SecretError('secret.invalid', `value must decode to 1-${MAX_OPAQUE_BYTES} bytes`);
  }
  return new SecretBytes(bytes);
}

function parseTarget(target: unknown): ParsedCreateRequest['target'] {
  if (!isObject(target)) {
    throw new SecretError('secret.invalid', 'target must be an object: {"group": G} or {"machine": ID or serial}');
  }
  onlyFields(target, ['group', 'machine'], 'target.');
  if ((target.group === undefined) === (target.machine === undefined)) {
    throw new SecretError('secret.invalid', 'target must name exactly one of group and machine');
  }
  if (target.group !== undefined) {
    if (typeof target.group !== 'string' || !GROUP_PATTERN.test(target.group)) {
      throw new SecretError('secret.invalid', `target.${GROUP_RULE}`);
    }
    return { group: target.group };
  }
  if (typeof target.machine !== 'string' || target.machine.length === 0 || target.machine.length > 128) {
    throw new SecretError('secret.invalid', 'target.machine must be a machine id (UUID) or serial');
  }
  return { machine: target.machine };
}

function parseParameters(kind: SecretKind, raw: unknown): SecretParameters {
  if (!isObject(raw)) {
    throw new SecretError('secret.invalid', 'parameters must be an object');
  }
  switch (kind) {
    case 'tls': {
      onlyFields(raw, ['sans', 'validityDays', 'renewBeforeDays', 'keyAlgorithm'], 'parameters.');
      if (!Array.isArray(raw.sans) || raw.sans.length === 0 || raw.sans.length > MAX_SAN_TEMPLATES) {
        throw new SecretError('secret.invalid-san-template', `parameters.sans must be a list of 1-${MAX_SAN_TEMPLATES} SAN templates, e.g. ["{hostname}.{group}.cluster.internal"]`);
      }
      const sans = raw.sans.map((t, i) => checkSanTemplate(t, `parameters.sans[${i}]`));
      if (new Set(sans).size !== sans.length) {
        throw new SecretError('secret.invalid-san-template', 'parameters.sans lists a template twice');
      }
      return { sans, ...certificateParameters(raw) };
    }
    case 'kubelet-client': {
      onlyFields(raw, ['server', 'clusterName', 'validityDays', 'renewBeforeDays', 'keyAlgorithm'], 'parameters.');
      return { server: serverUrl(raw.server), clusterName: clusterName(raw.clusterName), ...certificateParameters(raw) };
    }
    case 'disk': {
      onlyFields(raw, ['size', 'rotateEveryDays'], 'parameters.');
      const size = raw.size ?? DISK_KEY_SIZES[0];
      if (!(DISK_KEY_SIZES as readonly unknown[]).includes(size)) {
        throw new SecretError('secret.invalid', `parameters.size must be ${DISK_KEY_SIZES.join(' or ')} (bytes)`);
      }
      const rotateEveryDays = raw.rotateEveryDays ?? DEFAULT_DISK_ROTATE_EVERY_DAYS;
      if (!Number.isInteger(rotateEveryDays) || (rotateEveryDays as number) < 0 || (rotateEveryDays as number) > MAX_ROTATE_EVERY_DAYS) {
        throw new SecretError('secret.invalid', `parameters.rotateEveryDays must be a whole number of days, 0 (never on a schedule) to ${MAX_ROTATE_EVERY_DAYS}`);
      }
      return { size: size as number, rotateEveryDays: rotateEveryDays as number };
    }
    case 'opaque': {
      onlyFields(raw, ['size'], 'parameters.');
      const size = raw.size ?? DEFAULT_OPAQUE_SIZE;
      if (!Number.isInteger(size) || (size as number) < 1 || (size as number) > MAX_OPAQUE_BYTES) {
        throw new SecretError('secret.invalid', `parameters.size must be a whole number of bytes, 1-${MAX_OPAQUE_BYTES}`);
      }
      return { size: size as number };
    }
  }
}

function certificateParameters(raw: Record<string, unknown>): { validityDays: number; renewBeforeDays: number; keyAlgorithm: SecretKeyAlgorithm } {
  const validityDays = raw.validityDays ?? DEFAULT_VALIDITY_DAYS;
  if (!Number.isInteger(validityDays) || (validityDays as number) < MIN_VALIDITY_DAYS || (validityDays as number) > MAX_VALIDITY_DAYS) {
    throw new SecretError('secret.invalid', `parameters.validityDays must be a whole number of days, ${MIN_VALIDITY_DAYS}-${MAX_VALIDITY_DAYS}`);
  }
  const renewBeforeDays = raw.renewBeforeDays ?? Math.min(DEFAULT_RENEW_BEFORE_DAYS, Math.floor((validityDays as number) / 3));
  if (!Number.isInteger(renewBeforeDays) || (renewBeforeDays as number) < 0 || (renewBeforeDays as number) >= (validityDays as number)) {
    throw new SecretError('secret.invalid', 'parameters.renewBeforeDays must be a whole number of days, from 0 to less than validityDays');
  }
  const keyAlgorithm = raw.keyAlgorithm ?? SECRET_KEY_ALGORITHMS[0];
  if (typeof keyAlgorithm !== 'string' || !(SECRET_KEY_ALGORITHMS as readonly string[]).includes(keyAlgorithm)) {
    throw new SecretError('secret.invalid', `parameters.keyAlgorithm must be one of ${SECRET_KEY_ALGORITHMS.join(', ')}`);
  }
  return { validityDays: validityDays as number, renewBeforeDays: renewBeforeDays as number, keyAlgorithm: keyAlgorithm as SecretKeyAlgorithm };
}

function serverUrl(raw: unknown): string {
  let url: URL | undefined;
  try {
    url = typeof raw === 'string' && raw.length <= 2048 ? new URL(raw) : undefined;
  } catch {
    url = undefined;
  }
  // The kubelet talks to the API server over TLS only; user info in a kubeconfig URL is never right.
  if (url === undefined || url.protocol !== 'https:' || url.username !== '' || url.password !== '' || url.hash !== '' || url.search !== '') {
    throw new SecretError('secret.invalid', 'parameters.server must be the API server\'s https URL, e.g. https://10.0.0.1:6443');
  }
  return url.href.replace(/\/$/, '');
}

function clusterName(raw: unknown): string {
  const name = raw ?? 'kubernetes';
  if (typeof name !== 'string' || !SECRET_NAME_PATTERN.test(name)) {
    throw new SecretError('secret.invalid', 'parameters.clusterName must be 1-63 characters: a lowercase letter or digit, then lowercase letters, digits or . _ -');
  }
  return name;
}

function onlyFields(o: Record<string, unknown>, allowed: readonly string[], prefix: string): void {
  const extra = Object.keys(o).filter((k) => !allowed.includes(k));
  if (extra.length > 0) {
    const shown = extra[0]!.replace(/[^\x20-\x7e]/g, '?').slice(0, 40);
    throw new SecretError('secret.invalid', `${prefix}${shown}: unknown field (allowed: ${allowed.join(', ')})`);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
