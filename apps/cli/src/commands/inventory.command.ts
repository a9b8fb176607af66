import { createReadStream, statSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import type { ImportSummary, RecordedImport } from '@rackseal/api-contracts';
import { CliError, EXIT } from '@rackseal/command-line';
import { ServerClient, withServerOptions } from '../server-client';
import { safe, terminalJson } from '../terminal-text';

interface ImportOptions {
  dryRun?: boolean;
  partial?: boolean;
  group?: string;
  json?: boolean;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An upload of hours must not be cut by a timeout; the server answers when the last row is checked. */
const UPLOAD_TIMEOUT_MS = 6 * 60 * 60 * 1000;

/**
 * `rackseal inventory import FILE [--dry-run] [--partial] [--group G]` (docs/architecture.md §4.2, §5, issue 5): streams
 * the CSV to POST /v1/inventory/imports (never read whole into memory), with a progress bar on
 * stderr when it is a terminal, then prints the summary and every listed problem with its line.
 * Exit 0 when every row is good, 1 when any row was refused (atomic: nothing landed; --partial: the
 * good rows landed), 2 for usage, an unreadable file, a refused request or an unreachable server.
 */
export function registerInventory(program: Command): void {
  const inventory = program.command('inventory').description('machine inventory on the control plane (server commands)');
  withServerOptions(
    inventory
      .command('import')
      .description('import an inventory CSV: serial, asset_tag, hostname, group, ek_cert or ek_pub_hash[, ek_intermediates]')
      .argument('<file>', 'the CSV file (UTF-8, header row required)')
      .option('--dry-run', 'check every row, write nothing')
      .option('--partial', 'land the good rows even if some are refused (default: all or nothing)')
      .option('--group <group>', 'group for rows whose group cell is empty')
      .option('--json', 'print the server summary as JSON'),
  ).action(async (file: string, options: ImportOptions, command: Command) => {
    const summary = await importFile(file, options, ServerClient.forCommand(command));
    process.stdout.write(options.json === true ? `${terminalJson(summary, 2)}\n` : formatSummary(summary));
    if (summary.counts.invalid > 0) {
      process.exitCode = EXIT.invalid;
    }
  });

  withServerOptions(
    inventory
      .command('show')
      .description("an import's recorded report: outcome, counts and the refused rows with their lines")
      .argument('<import-id>', 'the import id that `inventory import` printed')
      .option('--json', 'machine-readable output'),
  ).action(async (id: string, options: { json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    if (!UUID.test(id)) {
      throw CliError.usage(`${client.action}: ${JSON.stringify(safe(id.slice(0, 100)))} is not an import id (a UUID, as \`inventory import\` prints it)`);
    }
    const { body } = await client.get<RecordedImport>(`v1/inventory/imports/${client.segment(id, 'an import id')}`);
    if (options.json === true) {
      process.stdout.write(`${terminalJson(body, 2)}\n`);
      return;
    }
    const file = body.fileName === null ? '' : ` of ${JSON.stringify(body.fileName)}`;
    process.stdout.write(`${safe(`import${file} by ${body.startedBy}, ${body.startedAt} – ${body.finishedAt}`)}\n${formatSummary(body)}`);
  });
}

async function importFile(file: string, options: ImportOptions, client: ServerClient): Promise<ImportSummary> {
  let size: number;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) {
      throw CliError.usage(`${file} is not a file`);
    }
    size = stat.size;
  } catch (error) {
    if (error instanceof CliError) {
      throw error;
    }
    throw CliError.usage(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const progress = new ProgressBar(size, process.stderr);
  const stream = createReadStream(file, { highWaterMark: 256 * 1024 });
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let readError: Error | undefined;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await chunks.next();
        if (next.done === true) {
          progress.done();
          controller.close();
          return;
        }
        const chunk = next.value;
        progress.advance(chunk.length);
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
      } catch (error) {
        readError = error as Error;
        controller.error(error);
      }
    },
    cancel() {
      stream.destroy();
    },
  });
  try {
    const { body: summary } = await client.request<ImportSummary>('POST', 'v1/inventory/imports', {
      query: {
        fileName: basename(file).slice(0, 255),
        dryRun: options.dryRun === true ? 'true' : undefined,
        partial: options.partial === true ? 'true' : undefined,
        group: options.group,
      },
      stream: { body, contentType: 'text/csv' },
      timeoutMs: UPLOAD_TIMEOUT_MS,
    });
    return summary;
  } catch (error) {
    if (readError !== undefined) {
      throw CliError.usage(`cannot read ${file}: ${readError.message}`);
    }
    throw error;
  } finally {
    progress.clear();
    stream.destroy();
  }
}

/** `[#####-----]  42%  12.3/29.0 MB` on stderr, redrawn at most every 100 ms; silent when not a TTY. */
class ProgressBar {
  private sent = 0;
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly total: number,
    private readonly out: NodeJS.WriteStream,
  ) {}

  advance(bytes: number): void {
    this.sent += bytes;
    const now = Date.now();
    if (now - this.lastDraw >= 100) {
      this.lastDraw = now;
      this.draw();
    }
  }

  done(): void {
    this.draw();
  }

  clear(): void {
    if (this.drawn) {
      this.out.write('\r\x1b[K');
      this.drawn = false;
    }
  }

  private draw(): void {
    if (this.out.isTTY !== true) {
      return;
    }
    const fraction = this.total === 0 ? 1 : Math.min(1, this.sent / this.total);
    const width = 30;
    const filled = Math.round(fraction * width);
    const mb = (n: number): string => (n / 1e6).toFixed(1);
    const label = fraction >= 1 ? ' checking rows…' : '';
    this.out.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.round(fraction * 100)).padStart(3)}%  ${mb(this.sent)}/${mb(this.total)} MB${label}\x1b[K`);
    this.drawn = true;
  }
}

/** What the first line says about an import: its answer, or its record (which may be running or failed). */
function outcomeOf(s: ImportSummary | RecordedImport): string {
  switch (s.status) {
    case 'succeeded':
      return s.dryRun ? 'dry run: every row is good, nothing was written' : 'imported';
    case 'partial':
      return s.dryRun ? 'dry run (--partial): the good rows would land, nothing was written' : 'partially imported: the good rows landed, the refused rows did not';
    case 'refused':
      return s.dryRun
        ? 'dry run: some rows are refused, so nothing would land (use --partial to land the good rows)'
        : 'refused: nothing was imported because some rows are refused (fix them, or use --partial)';
    case 'running':
      return 'running: the import has not ended yet';
    case 'failed':
      return 'failed: the import stopped before it ended, nothing was imported';
  }
}

export function formatSummary(s: ImportSummary | RecordedImport): string {
  const outcome = outcomeOf(s);
  const rows: [string, number][] = [
    ['rows', s.counts.rows],
    ['valid', s.counts.valid],
    ['refused', s.counts.invalid],
    ['created', s.counts.created],
    ['updated', s.counts.updated],
    ['unchanged', s.counts.unchanged],
  ];
  const width = Math.max(...rows.map(([, n]) => String(n).length));
  const lines = [`${outcome}${s.id === null ? '' : ` (import ${s.id})`}`, ...rows.map(([k, n]) => `  ${k.padEnd(10)} ${String(n).padStart(width)}`)];
  if (s.problems.length > 0) {
    lines.push('problems:');
    for (const p of s.problems) {
      lines.push(safe(`  line ${p.line}${p.serial === undefined ? '' : ` (serial ${JSON.stringify(p.serial)})`}: ${p.reason}: ${p.message}`));
    }
    if (s.problemsTruncated) {
      lines.push(`  … ${s.counts.invalid - s.problems.length} more not listed`);
    }
  }
  return `${lines.join('\n')}\n`;
}
