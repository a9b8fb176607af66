/**
 * The operator's side of the demo: the built `rackseal` CLI, run as an operator would (server and
 * token in RACKSEAL_SERVER / RACKSEAL_TOKEN, never in argv), each command echoed before its output;
 * and read-only calls of the operator API for the live table (the same data `rackseal machines
 * show` prints, without starting a process per question).
 */
import { type AuditRecordView, type CertifiedKey, type DeliveryView, MAX_PAGE_SIZE, type MachineDetail, nextPageAfter } from '@rackseal/api-contracts';
import { type CliRun, runRacksealCliAsync } from './support/cli-runner';
import { check } from './steps';

/** At most this many lines of a command's output are echoed: the rest is the command's business. */
const ECHO_LINES = 6;

export class Operator {
  constructor(
    readonly server: string,
    private readonly token: string,
    private readonly log: (line: string) => void,
    /** For the commands that go to PostgreSQL (`audit verify`): DATABASE_URL. */
    private readonly databaseUrl: string,
  ) {}

  /**
   * `rackseal ARGS`; its exit code must be `expect` (default 0), else the step fails naming the
   * command. `input` is its standard input (a key never goes in argv or a file); `quiet` keeps its
   * output off the screen (what it prints is a credential).
   */
  async rackseal(args: readonly string[], options: { expect?: number; input?: Buffer; quiet?: boolean } = {}): Promise<CliRun> {
    const expected = options.expect ?? 0;
    this.log(`  $ rackseal ${args.map(shellWord).join(' ')}${options.input === undefined ? '' : ' < (from memory)'}`);
    // `secrets rotate` waits for every target's ack.
    const env = { RACKSEAL_SERVER: this.server, RACKSEAL_TOKEN: this.token, DATABASE_URL: this.databaseUrl };
    const run = await runRacksealCliAsync(args, { env, timeoutMs: 180_000, ...(options.input === undefined ? {} : { input: options.input }) });
    const shown = options.quiet === true ? [] : (run.stdout.trim() === '' ? run.stderr : run.stdout).trimEnd().split('\n').filter((l) => l !== '');
    for (const line of shown.slice(0, ECHO_LINES)) {
      this.log(`    ${line}`);
    }
    if (shown.length > ECHO_LINES) {
      this.log(`    … ${shown.length - ECHO_LINES} more line(s)`);
    }
    check(run.status === expected, `rackseal ${args[0]} ${args[1] ?? ''} exited ${String(run.status)}, expected ${expected}: ${run.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    return run;
  }

  async get<T>(path: string): Promise<{ status: number; body: T }> {
    const response = await fetch(`${this.server}${path}`, { headers: { Authorization: `Bearer ${this.token}` } });
    return { status: response.status, body: (await response.json()) as T };
  }

  async machine(serial: string): Promise<MachineDetail> {
    const { status, body } = await this.get<MachineDetail>(`/v1/machines/${encodeURIComponent(serial)}`);
    check(status === 200, `GET /v1/machines/${serial} answered ${status}`);
    return body;
  }

  async liveKey(serial: string): Promise<CertifiedKey | undefined> {
    const { status, body } = await this.get<CertifiedKey[]>(`/v1/machines/${encodeURIComponent(serial)}/keys`);
    check(status === 200, `GET /v1/machines/${serial}/keys answered ${status}`);
    return body.find((k) => k.retiredAt === null);
  }

  /** Every delivery to the machine, by id (keyset pages of the largest size). */
  async deliveries(serial: string): Promise<DeliveryView[]> {
    return this.allPages<DeliveryView>(`/v1/deliveries?machine=${encodeURIComponent(serial)}`, (d) => d.id);
  }

  /** Every audit record, in the order they were appended. */
  async auditRecords(): Promise<AuditRecordView[]> {
    return this.allPages<AuditRecordView>('/v1/audit?', (r) => String(r.id));
  }

  /** A list endpoint read to its end (the paging contract of libs/api-contracts paging.ts). */
  private async allPages<T>(path: string, cursorOf: (last: T) => string): Promise<T[]> {
    const all: T[] = [];
    let after: string | undefined;
    do {
      const separator = path.endsWith('?') ? '' : '&';
      const url = `${path}${separator}limit=${MAX_PAGE_SIZE}${after === undefined ? '' : `&after=${encodeURIComponent(after)}`}`;
      const { status, body } = await this.get<T[]>(url);
      check(status === 200, `GET ${url} answered ${status}`);
      all.push(...body);
      after = nextPageAfter(body, MAX_PAGE_SIZE, cursorOf);
    } while (after !== undefined);
    return all;
  }
}

/** An argument as a shell would need it to be typed (for the echoed command line). */
function shellWord(arg: string): string {
  return /^[\w@%+=:,./{}-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
