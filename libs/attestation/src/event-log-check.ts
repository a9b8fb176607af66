import { explainPcrs, parseEventLog, TpmParseError } from '@rackseal/tpm2';

/**
 * Whether the machine's TCG event log replays to the quoted PCR values (TCG PC Client Platform
 * Firmware Profile §10: each PCR is the hash chain of its events). Answers one line per quoted PCR
 * that does not match — none when the log is consistent with the quote. A log the quote does not
 * vouch for cannot explain anything, so a mismatch refuses the attestation rather than being
 * shown to the operator as if it were what the machine measured.
 */
export function checkEventLog(eventLog: Buffer, bank: string, values: ReadonlyMap<number, Buffer>): string[] {
  let log;
  try {
    log = parseEventLog(eventLog);
  } catch (error) {
    if (error instanceof TpmParseError) {
      return [`the event log does not parse: ${error.message}`];
    }
    throw error;
  }
  return explainPcrs(log, new Map([[bank, values]]))
    .filter((explanation) => explanation.status !== 'match')
    .map((explanation) => explanation.message);
}
