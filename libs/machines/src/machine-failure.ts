import {
  ERROR_CODE_PATTERN,
  MAX_FAILURE_EXPLANATION_LINE_LENGTH,
  MAX_FAILURE_EXPLANATION_LINES,
  MAX_FAILURE_REASON_LENGTH,
} from '@rackseal/api-contracts';
import { UNPRINTABLE_CLASS } from '@rackseal/ek-trust';
import type { MachineFailure } from './machine';
import { MachineFailureRecordError } from './machine-errors';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UNPRINTABLE_RUN = new RegExp(`[${UNPRINTABLE_CLASS}]+`, 'gu');
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * One line fit to store and show: explanation lines quote what the machine sent (event descriptions
 * from its event log), so control characters, line breaks and bidi controls become one space, lone
 * surrogates (which PostgreSQL's jsonb refuses) U+FFFD, and a line too long is cut with "…". The
 * verifier's refusal is recorded whatever the machine put in its log, never dropped for its text.
 */
export function oneLine(text: string, max: number): string {
  const line = text.replace(LONE_SURROGATE, '\ufffd').replace(UNPRINTABLE_RUN, ' ').trim();
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}

/**
 * The failure as stored: reason and explanation lines made printable and bounded (at most
 * MAX_FAILURE_EXPLANATION_LINES, the last one saying how many were left out). The fields the verifier
 * itself chose (the error code, the time, the registration id) are checked, not repaired: a wrong one
 * is a bug, refused with MachineFailureRecordError.
 */
export function normalizeFailure(failure: MachineFailure): MachineFailure {
  if (!(failure.at instanceof Date) || Number.isNaN(failure.at.getTime())) {
    throw new MachineFailureRecordError('a failure record needs a valid time');
  }
  if (typeof failure.code !== 'string' || failure.code.length > 100 || !ERROR_CODE_PATTERN.test(failure.code)) {
    throw new MachineFailureRecordError(`a failure record needs an error code like "attestation.pcr-mismatch" (got ${JSON.stringify(String(failure.code).slice(0, 100))})`);
  }
  if (failure.registrationId !== undefined && !UUID.test(failure.registrationId)) {
    throw new MachineFailureRecordError(`a failure record's registration id must be a lowercase UUID (got ${JSON.stringify(String(failure.registrationId).slice(0, 100))})`);
  }
  const reason = oneLine(failure.reason, MAX_FAILURE_REASON_LENGTH);
  const lines = failure.explanation.map((l) => oneLine(l, MAX_FAILURE_EXPLANATION_LINE_LENGTH)).filter((l) => l.length > 0);
  const explanation =
    lines.length <= MAX_FAILURE_EXPLANATION_LINES ? lines : [...lines.slice(0, MAX_FAILURE_EXPLANATION_LINES - 1), `… ${lines.length - MAX_FAILURE_EXPLANATION_LINES + 1} more lines`];
  return {
    at: failure.at,
    code: failure.code,
    reason: reason.length > 0 ? reason : failure.code,
    explanation,
    ...(failure.registrationId === undefined ? {} : { registrationId: failure.registrationId }),
  };
}
