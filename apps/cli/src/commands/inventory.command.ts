import { createReadStream, statSync } from 'node:fs';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { CliError } from '../cli-error';
import { EXIT } from '../exit-codes';
import { ServerClient, type ServerOptions, withServerOptions } from '../server-client';

interface ImportOptions extends ServerOptions {
  dryRun?: boolean;
  partial?: boolean;
  group?: string;
  json?: boolean;
}

interface ImportSummary {
  id: string | null;
  status: 'succeeded' | 'partial' | 'refused';
  dryRun: boolean;
  partial: boolean;
  counts: { rows: number; valid: number; invalid: number; created: number; updated: number; unchanged: number };
  problems: { line: number; reason: string; message: string; serial?: string }[];
  problemsTruncated: boolean;
}

/** An upload of hours must not be cut by a timeout; the server answers when the last row is checked. */
const UPLOAD_TIMEOUT_MS = 6 * 60 * 60 * 1000;

/**
 * `rackseal inventory import FILE [--dry-run] [--partial] [--group G]` (DESIGN §3, issue 5): streams
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
  ).action(async (file: string, options: ImportOptions) => {
    const summary = await importFile(file, options);
    process.stdout.write(options.json === true ? `${JSON.stringify(summary, null, 2)}\n` : formatSummary(summary));
    if (summary.counts.invalid > 0) {
      process.exitCode = EXIT.invalid;
    }
  });
}

async function importFile(file: string, options: ImportOptions): Promise<ImportSummary> {
  const client = ServerClient.fromOptions(options);
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
  const url = new URL('v1/inventory/imports', client.baseUrl);
  url.searchParams.set('fileName', basename(file).slice(0, 255));
  if (options.dryRun === true) {
    url.searchParams.set('dryRun', 'true');
  }
  if (options.partial === true) {
    url.searchParams.set('partial', 'true');
  }
  if (options.group !== undefined) {
    url.searchParams.set('group', options.group);
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
  const token = options.token ?? process.env.RACKSEAL_TOKEN ?? '';
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv', accept: 'application/json' },
      body,
      duplex: 'half',
      signal: AbortSignal.timeout(UPLOAD_TIMEOUT_MS),
    } as RequestInit & { duplex: 'half' });
  } catch (error) {
    progress.clear();
    if (readError !== undefined) {
      throw CliError.usage(`cannot read ${file}: ${readError.message}`);
    }
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    throw CliError.usage(`cannot reach ${client.baseUrl.origin}: ${cause?.code ?? cause?.message ?? (error as Error).message}`);
  } finally {
    stream.destroy();
  }
  progress.clear();
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw CliError.usage(`unexpected reply from ${url.origin}${url.pathname} (HTTP ${response.status}, not JSON): is --server the rackseal control plane?`);
  }
  if (response.ok) {
    return parsed as ImportSummary;
  }
  const raw = (parsed as { message?: unknown }).message;
  const message = Array.isArray(raw) ? raw.map(String).join('; ') : typeof raw === 'string' ? raw : response.statusText;
  if (response.status === 401) {
    throw CliError.usage('the server refused the token (401): it is missing, unknown or revoked');
  }
  if (response.status === 403) {
    throw CliError.usage(`forbidden (403): ${message}`);
  }
  if (response.status < 500) {
    throw CliError.usage(`import refused (${response.status}): ${message}`);
  }
  const errorId = (parsed as { errorId?: unknown }).errorId;
  throw CliError.usage(`server error ${response.status}: ${message}${typeof errorId === 'string' ? ` (errorId ${errorId})` : ''}`);
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

/** Control characters in server text are shown escaped, so a crafted cell cannot drive the terminal. */
function safe(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export function formatSummary(s: ImportSummary): string {
  const outcome =
    s.status === 'succeeded'
      ? s.dryRun
        ? 'dry run: every row is good, nothing was written'
        : 'imported'
      : s.status === 'partial'
        ? s.dryRun
          ? 'dry run (--partial): the good rows would land, nothing was written'
          : 'partially imported: the good rows landed, the refused rows did not'
        : s.dryRun
          ? 'dry run: some rows are refused, so nothing would land (use --partial to land the good rows)'
          : 'refused: nothing was imported because some rows are refused (fix them, or use --partial)';
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
      lines.push(`  line ${p.line}${p.serial === undefined ? '' : ` (serial ${safe(JSON.stringify(p.serial))})`}: ${p.reason}: ${safe(p.message)}`);
    }
    if (s.problemsTruncated) {
      lines.push(`  … ${s.counts.invalid - s.problems.length} more not listed`);
    }
  }
  return `${lines.join('\n')}\n`;
}
