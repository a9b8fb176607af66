import { algName, type EventLogReplay, parseEventLog, replayEventLog, TpmParseError } from '@rackseal/tpm2';
import type { Command } from 'commander';
import { CliError } from '../cli-error';
import { readInput } from '../input-files';

/** The JSON shape of `rackseal eventlog replay --json` (issue 3): bank → PCR index → lowercase hex. */
export interface EventLogReplayJson {
  readonly pcrs: Record<string, Record<string, string>>;
  readonly events: number;
}

/**
 * `rackseal eventlog replay [--json] FILE`: replays a TCG PC Client event log
 * (binary_bios_measurements, crypto-agile or SHA-1) to the PCR values a TPM that measured it would
 * hold, offline. Every bank the log carries is printed, each with the PCRs its events extend (the
 * set tpm2_eventlog prints). `events` counts every record in the file, the Spec ID header and
 * EV_NO_ACTION events included: the number of entries tpm2_eventlog lists. Exit 0, or 2 when the file
 * is unreadable or not an event log (the parse error, naming structure, field and offset, on stderr).
 */
export function registerEventlogReplay(program: Command): void {
  const eventlog = program.command('eventlog').description('TCG PC Client event log tools (offline)');
  eventlog
    .command('replay')
    .description('replay a TCG PC Client event log (binary_bios_measurements) to PCR values')
    .argument('<file>', 'the event log, e.g. /sys/kernel/security/tpm0/binary_bios_measurements')
    .option('--json', 'machine-readable output: {"pcrs": {"<bank>": {"<index>": "<hex>"}}, "events": N}')
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
      process.stdout.write(options.json ? `${JSON.stringify(replayJson(replay))}\n` : replayText(replay));
    });
}

export function replayJson(replay: EventLogReplay): EventLogReplayJson {
  const pcrs: Record<string, Record<string, string>> = {};
  for (const [bank, values] of replay.banks) {
    pcrs[bank] = Object.fromEntries([...values].map(([index, value]) => [String(index), value.toString('hex')]));
  }
  return { pcrs, events: replay.events };
}

function replayText(replay: EventLogReplay): string {
  const lines: string[] = [];
  for (const [bank, values] of replay.banks) {
    lines.push(`${bank}:`);
    for (const [index, value] of values) {
      lines.push(`  ${String(index).padStart(2)}: ${value.toString('hex')}`);
    }
  }
  lines.push(`events: ${replay.events} (${replay.extended} extended, ${replay.noAction} EV_NO_ACTION)`);
  if (replay.startupLocality !== undefined) {
    lines.push(`startup locality: ${replay.startupLocality}`);
  }
  if (replay.unsupportedAlgorithms.length > 0) {
    lines.push(`not replayed (unsupported algorithms): ${replay.unsupportedAlgorithms.map(algName).join(', ')}`);
  }
  return `${lines.join('\n')}\n`;
}
