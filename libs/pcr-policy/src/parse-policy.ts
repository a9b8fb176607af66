import { type HashAlgorithm, hashAlgorithmByBank, PC_CLIENT_PCR_COUNT, UnsupportedHashError } from '@rackseal/tpm2';
import { decodeEventLogField, parseReferenceLog } from './event-log-field';
import { PcrPolicyError } from './pcr-policy-error';
import {
  MAX_ALLOWED_SETS,
  MAX_LABEL_LENGTH,
  MAX_MACHINE_NAME_LENGTH,
  PCR_POLICY_MODES,
  type PcrPolicy,
  type PcrPolicyMode,
  type PcrValueSet,
  type PromotedFrom,
} from './pcr-policy';
import { echoed, nameProblem } from './text';

const POLICY_FIELDS = ['bank', 'pcrs', 'allowedSets', 'mode'];
const SET_FIELDS = ['label', 'values', 'promotedFrom'];
const PROMOTED_FIELDS = ['machine', 'at', 'eventLog'];
const HEX = /^[0-9a-fA-F]*$/;
const PCR_KEY = /^(0|[1-9][0-9]?)$/;
/** RFC 3339 UTC as Date.prototype.toISOString writes it (milliseconds optional). */
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

/**
 * Validates a PCR policy from JSON (the operator API's body, a stored row). Every malformed input is a
 * PcrPolicyError naming the field; the result is a new object (hex in lowercase) sharing nothing
 * with the input. Unknown fields are refused too: a misspelt `mode` must not silently mean enforce.
 *
 * A set's canary event log must parse with libs/tpm2 and carry the policy's bank; it is NOT required
 * to replay to the set's values, since a policy may select PCRs the firmware log does not cover
 * (evaluatePcrPolicy says so per PCR when it explains a mismatch).
 */
export function parsePcrPolicy(json: unknown): PcrPolicy {
  const policy = objectOf('policy', json, POLICY_FIELDS);
  const hash = bankOf(policy.bank);
  const pcrs = pcrListOf(policy.pcrs);
  if (!Array.isArray(policy.allowedSets)) {
    throw new PcrPolicyError('allowedSets', 'must be an array');
  }
  if (policy.allowedSets.length === 0 || policy.allowedSets.length > MAX_ALLOWED_SETS) {
    throw new PcrPolicyError('allowedSets', `must hold 1–${MAX_ALLOWED_SETS} sets, not ${policy.allowedSets.length}`);
  }
  const allowedSets = policy.allowedSets.map((set: unknown, i) => valueSetOf(`allowedSets[${i}]`, set, hash, pcrs));
  allowedSets.forEach((set, i) => {
    const first = allowedSets.findIndex((other) => other.label === set.label);
    if (first !== i) {
      throw new PcrPolicyError(`allowedSets[${i}].label`, `"${set.label}" is also the label of allowedSets[${first}]`);
    }
  });
  return { bank: hash.bank, pcrs, allowedSets, mode: modeOf(policy.mode) };
}

function objectOf(field: string, value: unknown, known: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PcrPolicyError(field, 'must be an object');
  }
  const unknown = Object.keys(value).find((key) => !known.includes(key));
  if (unknown !== undefined) {
    throw new PcrPolicyError(field, `unknown field "${echoed(unknown, 64)}" (known: ${known.join(', ')})`);
  }
  return value as Record<string, unknown>;
}

/** Exactly a bank name libs/tpm2 implements, as it spells it (`sha256`, not `SHA256` or `sha-256`). */
export function bankOf(value: unknown): HashAlgorithm {
  if (typeof value !== 'string') {
    throw new PcrPolicyError('bank', 'must be a string');
  }
  try {
    const hash = hashAlgorithmByBank(value);
    if (hash.bank === value) {
      return hash;
    }
  } catch (error) {
    if (!(error instanceof UnsupportedHashError)) {
      throw error;
    }
  }
  throw new PcrPolicyError('bank', `"${echoed(value, 32)}" is not a PCR bank rackseal implements (sha1, sha256, sha384, sha512, sha3_256, sha3_384, sha3_512)`);
}

function pcrListOf(value: unknown): number[] {
  if (!Array.isArray(value)) {
    throw new PcrPolicyError('pcrs', 'must be an array');
  }
  if (value.length === 0) {
    throw new PcrPolicyError('pcrs', 'must name at least one PCR');
  }
  value.forEach((pcr: unknown, i) => {
    const field = `pcrs[${i}]`;
    if (typeof pcr !== 'number' || !Number.isInteger(pcr) || pcr < 0 || pcr >= PC_CLIENT_PCR_COUNT) {
      // PC Client TPMs have PCRs 0–23 (PC Client Platform TPM Profile), as libs/tpm2's event-log parser.
      throw new PcrPolicyError(field, `must be a PCR index 0–${PC_CLIENT_PCR_COUNT - 1}`);
    }
    const previous = value[i - 1] as number | undefined;
    if (previous === pcr) {
      throw new PcrPolicyError(field, `PCR ${pcr} is listed twice`);
    }
    if (previous !== undefined && previous > pcr) {
      throw new PcrPolicyError(field, `must be in ascending order (PCR ${pcr} after ${previous})`);
    }
  });
  return [...(value as number[])];
}

function modeOf(value: unknown): PcrPolicyMode {
  const mode = PCR_POLICY_MODES.find((m) => m === value);
  if (mode === undefined) {
    throw new PcrPolicyError('mode', `must be ${PCR_POLICY_MODES.map((m) => `"${m}"`).join(' or ')}`);
  }
  return mode;
}

function valueSetOf(field: string, value: unknown, hash: HashAlgorithm, pcrs: readonly number[]): PcrValueSet {
  const set = objectOf(field, value, SET_FIELDS);
  const label = labelOf(`${field}.label`, set.label);
  const values = valuesOf(`${field}.values`, set.values, hash, pcrs);
  if (set.promotedFrom === undefined) {
    return { label, values };
  }
  return { label, values, promotedFrom: promotedFromOf(`${field}.promotedFrom`, set.promotedFrom, hash) };
}

export function labelOf(field: string, value: unknown): string {
  if (typeof value !== 'string') {
    throw new PcrPolicyError(field, 'must be a string');
  }
  const problem = nameProblem(value, MAX_LABEL_LENGTH);
  if (problem !== undefined) {
    throw new PcrPolicyError(field, problem);
  }
  return value;
}

function valuesOf(field: string, value: unknown, hash: HashAlgorithm, pcrs: readonly number[]): Record<number, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new PcrPolicyError(field, 'must be an object of PCR index → hex digest');
  }
  const given = value as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!PCR_KEY.test(key) || !pcrs.includes(Number(key))) {
      throw new PcrPolicyError(`${field}.${echoed(key, 16)}`, `is not a PCR of the policy's list (${pcrs.join(', ')})`);
    }
  }
  const values: Record<number, string> = {};
  for (const pcr of pcrs) {
    values[pcr] = digestOf(`${field}.${pcr}`, given[String(pcr)], hash);
  }
  return values;
}

/** A hex digest of the bank's size (TPM 2.0 Part 2 §10.1 TPMU_HA), returned in lowercase. */
export function digestOf(field: string, value: unknown, hash: HashAlgorithm): string {
  if (value === undefined) {
    throw new PcrPolicyError(field, `missing: every set gives a value for every PCR of the policy`);
  }
  if (typeof value !== 'string' || !HEX.test(value)) {
    throw new PcrPolicyError(field, 'must be a hex string');
  }
  if (value.length !== hash.size * 2) {
    throw new PcrPolicyError(field, `a ${hash.bank} digest is ${hash.size * 2} hex digits, not ${value.length}`);
  }
  return value.toLowerCase();
}

function promotedFromOf(field: string, value: unknown, hash: HashAlgorithm): PromotedFrom {
  const promoted = objectOf(field, value, PROMOTED_FIELDS);
  const machine = machineOf(`${field}.machine`, promoted.machine);
  const at = timestampOf(`${field}.at`, promoted.at);
  if (promoted.eventLog === undefined) {
    return { machine, at };
  }
  const bytes = decodeEventLogField(`${field}.eventLog`, promoted.eventLog);
  parseReferenceLog(`${field}.eventLog`, bytes, hash.bank, hash.alg);
  return { machine, at, eventLog: promoted.eventLog as string };
}

export function machineOf(field: string, value: unknown): string {
  if (typeof value !== 'string') {
    throw new PcrPolicyError(field, 'must be a string');
  }
  const problem = nameProblem(value, MAX_MACHINE_NAME_LENGTH);
  if (problem !== undefined) {
    throw new PcrPolicyError(field, problem);
  }
  return value;
}

function timestampOf(field: string, value: unknown): string {
  // The date part must survive a round trip: 2026-02-30 parses, as 2 March.
  if (typeof value !== 'string' || !ISO_UTC.test(value) || Number.isNaN(Date.parse(value)) || new Date(value).toISOString().slice(0, 19) !== value.slice(0, 19)) {
    throw new PcrPolicyError(field, 'must be an ISO 8601 UTC timestamp (2026-12-02T16:10:14.000Z)');
  }
  return value;
}
