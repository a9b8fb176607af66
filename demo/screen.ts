/**
 * The demo's output: log lines above a live table of every machine's progress. On a terminal the
 * table is redrawn in place under the log (ANSI cursor-up and erase-below, ECMA-48 CUU/ED); anywhere
 * else (CI, a pipe, a file) every change of a cell is one progress line and the table is printed
 * whole when asked, so the output reads top to bottom.
 */

/** The table's columns after the machine's name, in the order a machine goes through them. */
export const STAGES = ['imported', 'attested', 'key certified', 'TLS', 'kubelet', 'disk key', 'LUKS2 unlock'] as const;
export type Stage = (typeof STAGES)[number];

export const DONE = '✓';
export const FAILED = '✗';
const WAITING = '·';

interface Row {
  readonly serial: string;
  via: string;
  state: string;
  readonly cells: Map<Stage, string>;
}

interface Output {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  /** The terminal's width: a table line wider than it takes more than one row to erase. */
  readonly columns?: number;
}

export class Screen {
  private readonly rows: Row[] = [];
  /** Lines of the table now on the terminal (TTY mode), erased before anything else is written. */
  private drawn = 0;
  private frozen = false;

  constructor(private readonly out: Output = process.stdout) {}

  get live(): boolean {
    return this.out.isTTY === true;
  }

  addMachine(serial: string, via: string): void {
    this.rows.push({ serial, via, state: '-', cells: new Map() });
    this.redraw();
  }

  /** A line of the log (above the table on a terminal). */
  log(line = ''): void {
    this.erase();
    this.out.write(`${line}\n`);
    this.redraw();
  }

  /** Sets a machine's cell, e.g. `✓ v2` or `✗ refused`; a changed cell is one progress line off a terminal. */
  set(serial: string, stage: Stage, text: string): void {
    const row = this.row(serial);
    if (this.frozen || row.cells.get(stage) === text) {
      return;
    }
    row.cells.set(stage, text);
    this.changed(`  ${serial}  ${stage}: ${text}`);
  }

  /** The machine's lifecycle state as the control plane reports it (imported, attested, quarantined, revoked). */
  setState(serial: string, state: string): void {
    const row = this.row(serial);
    if (this.frozen || row.state === state) {
      return;
    }
    row.state = state;
    this.changed(`  ${serial}  state: ${state}`);
  }

  /** Off a terminal: the whole table, once (on a terminal it is always there). */
  snapshot(): void {
    if (!this.live) {
      this.out.write(`${this.table().join('\n')}\n`);
    }
  }

  /** Leaves the table where it is, as it is: what follows is written below it, and cells no longer change. */
  freeze(): void {
    this.drawn = 0;
    this.frozen = true;
  }

  private changed(progressLine: string): void {
    if (this.live) {
      this.erase();
      this.redraw();
    } else {
      this.out.write(`${progressLine}\n`);
    }
  }

  private row(serial: string): Row {
    const row = this.rows.find((r) => r.serial === serial);
    if (row === undefined) {
      throw new Error(`no machine ${serial} on the board`);
    }
    return row;
  }

  private erase(): void {
    if (this.live && this.drawn > 0) {
      this.out.write(`\x1b[${this.drawn}A\x1b[J`);
      this.drawn = 0;
    }
  }

  private redraw(): void {
    if (this.live && !this.frozen && this.rows.length > 0) {
      const lines = this.table();
      this.out.write(`${lines.join('\n')}\n`);
      const width = this.out.columns ?? 0;
      this.drawn = lines.reduce((rows, line) => rows + (width > 0 ? Math.max(1, Math.ceil([...line].length / width)) : 1), 0);
    }
  }

  private table(): string[] {
    const header = ['machine', 'via', 'state', ...STAGES];
    const body = this.rows.map((r) => [r.serial, r.via, r.state, ...STAGES.map((s) => r.cells.get(s) ?? WAITING)]);
    const all = [header, ...body];
    const widths = header.map((_, i) => Math.max(...all.map((cells) => [...cells[i]!].length)));
    const line = (cells: string[]) => `  ${cells.map((c, i) => c + ' '.repeat(widths[i]! - [...c].length)).join('  ')}`.trimEnd();
    return ['', line(header), `  ${widths.map((w) => '─'.repeat(w)).join('  ')}`, ...body.map(line), ''];
  }
}
