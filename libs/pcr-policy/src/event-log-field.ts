import { parseEventLog, type TcgEventLog, TpmParseError } from '@rackseal/tpm2';
import { PcrPolicyError } from './pcr-policy-error';
import { MAX_EVENT_LOG_BYTES } from './pcr-policy';

/** The longest base64 text of a MAX_EVENT_LOG_BYTES log, refused before decoding anything longer. */
const MAX_BASE64_LENGTH = Math.ceil(MAX_EVENT_LOG_BYTES / 3) * 4;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * A canary's event log as stored in a set: canonical base64 (RFC 4648 §4, padded, no line breaks or
 * spaces: Node's decoder would skip them silently) of at most MAX_EVENT_LOG_BYTES bytes.
 */
export function decodeEventLogField(field: string, value: unknown): Buffer {
  if (typeof value !== 'string') {
    throw new PcrPolicyError(field, 'must be a base64 string');
  }
  if (value.length > MAX_BASE64_LENGTH) {
    throw new PcrPolicyError(field, `the event log is larger than ${MAX_EVENT_LOG_BYTES} bytes`);
  }
  if (value.length % 4 !== 0 || !BASE64.test(value)) {
    throw new PcrPolicyError(field, 'must be canonical base64 (RFC 4648 §4, padded, nothing else)');
  }
  const bytes = Buffer.from(value, 'base64');
  if (bytes.toString('base64') !== value) {
    throw new PcrPolicyError(field, 'must be canonical base64 (RFC 4648 §4, padded, nothing else)');
  }
  checkEventLogSize(field, bytes);
  return bytes;
}

export function checkEventLogSize(field: string, bytes: Buffer): void {
  if (bytes.length > MAX_EVENT_LOG_BYTES) {
    throw new PcrPolicyError(field, `the event log is ${bytes.length} bytes, more than ${MAX_EVENT_LOG_BYTES}`);
  }
}

/**
 * Parses a canary's log with libs/tpm2 and requires digests of the policy's bank: a reference log
 * that cannot be parsed or has no digests to compare would only make every later explanation fail.
 */
export function parseReferenceLog(field: string, bytes: Buffer, bank: string, bankAlg: number): TcgEventLog {
  let log: TcgEventLog;
  try {
    log = parseEventLog(bytes);
  } catch (error) {
    if (error instanceof TpmParseError) {
      throw new PcrPolicyError(field, `the event log does not parse: ${error.message}`);
    }
    throw error;
  }
  if (!log.algorithms.includes(bankAlg)) {
    throw new PcrPolicyError(field, `the event log carries no ${bank} digests`);
  }
  return log;
}
