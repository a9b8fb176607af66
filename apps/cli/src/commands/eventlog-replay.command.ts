import { algName, type EventLogReplay, parseEventLog, replayEventLog, TpmParseError } from '@rackseal/tpm2';
import type { Command } from 'commander';
import { CliError, readInput } from '@rackseal/command-line';
import { terminalJson } from '../terminal-text';

/**
 * The JSON shape of `rackseal eventlog replay --json`: `pcrs` (bank → PCR index → lowercase hex) and
 * `events` as issue 3 defined them, plus (issue 9) what the text output also says: the banks the log
 * carries that were not replayed, and why PCR 0 did not start at zero. Consumers of the first two keys
 * are unaffected.
 */
export interface EventLogReplayJson {
  readonly pcrs: Record<string, Record<string, string>>;
  readonly events: number;
  /** Banks declared by the log's Spec ID event and absent from `pcrs`; empty when every bank was replayed. */
  readonly unreplayedBanks: readonly UnreplayedBankJson[];
  /** null when PCR 0 started at zero. */
  readonly pcr0Start: { readonly source: 'h-crtm' | 'startup-locality'; readonly locality: number; readonly event: number } | null;
}

export interface UnreplayedBankJson {
  /** TPM_ALG_ID name (`TPM_ALG_SM3_256`), or `0x…` for a value TPM 2.0 Part 2 does not define. */
  readonly alg: string;
  /** The TPM_ALG_ID value. */
  readonly algId: number;
  /** `unsupported-algorithm`: rackseal cannot compute this hash, so it cannot extend the bank's PCRs. */
  readonly reason: 'unsupported-algorithm';
  /** One sentence for an operator. */
  readonly message: string;
}

/**
 * `rackseal eventlog replay [--json] FILE`: replays a TCG PC Client event log
 * (binary_bios_measurements, crypto-agile or SHA-1) to the PCR values a TPM that measured it would
 * hold, offline. Every bank the log carries is printed, each with the PCRs its events extend (the
 * set tpm2_eventlog prints). `events` counts every record in the file, the Spec ID header and
 * EV_NO_ACTION events included: the number of entries tpm2_eventlog lists. A bank the log declares but
 * this library cannot hash is never dropped silently: the text says `not replayed`, the JSON lists it
 * in `unreplayedBanks`. Exit 0, or 2 when the file
 * is unreadable or not an event log (the parse error, naming structure, field and offset, on stderr).
 */
export function registerEventlogReplay(program: Command): void {
  const eventlog = program.command('eventlog').description('TCG PC Client event log tools (offline)');
  eventlog
    .command('replay')
    .description('replay a TCG PC Client event log (binary_bios_measurements) to PCR values')
    .argument('<file>', 'the event log, e.g. /sys/kernel/security/tpm0/binary_bios_measurements')
    .option('--json', 'machine-readable output: {"pcrs": {"<bank>": {"<index>": "<hex>"}}, "events": N, "unreplayedBanks": [...], "pcr0Start": ...}')
    .action((file: string, options: { json?: boolean }) => {
      const bytes = readInput(file, 'event log');
      let replay: EventLogReplay;
      try {
        replay = replayEventLog(parseEventLog(bytes));
      } catch (error) {
        if (error instanceof TpmParseError) {
          throw CliError.usage(`${JSON.stringify(file)} is not a readable event log: ${error.message}`);
        }
        throw error;
      }
      process.stdout.write(options.json ? `${terminalJson(replayJson(replay))}\n` : replayText(replay));
    });
}

export function replayJson(replay: EventLogReplay): EventLogReplayJson {
  const pcrs: Record<string, Record<string, string>> = {};
  for (const [bank, values] of replay.banks) {
    pcrs[bank] = Object.fromEntries([...values].map(([index, value]) => [String(index), value.toString('hex')]));
  }
  const unreplayedBanks = replay.unsupportedAlgorithms.map(
    (algId): UnreplayedBankJson => ({ alg: algName(algId), algId, reason: 'unsupported-algorithm', message: unsupportedMessage(algId) }),
  );
  const start = replay.pcr0Start;
  const pcr0Start = start === undefined ? null : { source: start.source, locality: start.locality, event: start.event };
  return { pcrs, events: replay.events, unreplayedBanks, pcr0Start };
}

const unsupportedMessage = (algId: number): string =>
  `not replayed: the log carries ${algName(algId)} digests, a hash algorithm rackseal does not implement`;

function replayText(replay: EventLogReplay): string {
  const lines: string[] = [];
  for (const [bank, values] of replay.banks) {
    lines.push(`${bank}:`);
    for (const [index, value] of values) {
      lines.push(`  ${String(index).padStart(2)}: ${value.toString('hex')}`);
    }
  }
  lines.push(`events: ${replay.events} (${replay.extended} extended, ${replay.noAction} EV_NO_ACTION)`);
  if (replay.pcr0Start?.source === 'startup-locality') {
    lines.push(`startup locality: ${replay.pcr0Start.locality}`);
  } else if (replay.pcr0Start?.source === 'h-crtm') {
    lines.push(`H-CRTM (event ${replay.pcr0Start.event}): PCR 0 started at locality 4 in every bank`);
  }
  if (replay.unsupportedAlgorithms.length > 0) {
    lines.push(`not replayed (unsupported algorithms): ${replay.unsupportedAlgorithms.map(algName).join(', ')}`);
  }
  return `${lines.join('\n')}\n`;
}
