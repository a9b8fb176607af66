/**
 * The demo's steps, each checked: a step is ✓ only when the checks in it held (exit codes, states
 * read back from the control plane, files, cryptsetup's verdict), never because it printed. The
 * first failed step stops the story (what follows builds on it); the summary lists every step.
 */

/** A check that did not hold: the step fails with this message. */
export class CheckFailed extends Error {
  override readonly name = 'CheckFailed';
}

/** Throws CheckFailed(message) unless `condition` holds. */
export function check(condition: boolean, message: string): asserts condition {
  if (!condition) {
    throw new CheckFailed(message);
  }
}

type Outcome = { readonly ok: true; readonly detail: string } | { readonly ok: false; readonly detail: string };

export class Steps {
  private readonly outcomes = new Map<string, Outcome>();
  /** The step running now, if any. */
  private current: string | undefined;
  /** The step a signal cut short: whatever it does afterwards (failing, as its processes go) is not its outcome. */
  private interrupted: string | undefined;

  constructor(
    /** Every step's title, in order, so the summary names the ones that never ran. */
    private readonly titles: readonly string[],
    private readonly log: (line: string) => void,
  ) {}

  /** Runs step `title` (one of the titles); its detail is what `run` returns. A throw fails it and is rethrown. */
  async run(title: string, run: () => Promise<string>): Promise<void> {
    if (!this.titles.includes(title)) {
      throw new Error(`unknown step "${title}"`);
    }
    this.log('');
    this.log(`▶ ${title}`);
    const previous = this.current;
    this.current = title;
    try {
      const detail = await run();
      if (title !== this.interrupted) {
        this.outcomes.set(title, { ok: true, detail });
        this.log(`  ✓ ${detail}`);
      }
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error);
      if (title !== this.interrupted) {
        this.outcomes.set(title, { ok: false, detail });
        this.log(`  ✗ ${detail}`);
      }
      throw error;
    } finally {
      this.current = previous;
    }
  }

  /** A signal arrived: the step running now is interrupted, not failed. */
  interrupt(): void {
    this.interrupted = this.current;
  }

  /** True when every step ran and held. */
  get allPassed(): boolean {
    return this.titles.every((t) => this.outcomes.get(t)?.ok === true);
  }

  summary(): string[] {
    const lines = ['', 'summary'];
    for (const [i, title] of this.titles.entries()) {
      const outcome = this.outcomes.get(title);
      const mark = outcome === undefined ? '–' : outcome.ok ? '✓' : '✗';
      const tail = outcome === undefined ? (title === this.interrupted ? ' (interrupted)' : ' (not run)') : outcome.ok ? '' : `: ${outcome.detail.split('\n')[0]}`;
      lines.push(`  ${mark} ${String(i + 1).padStart(2)}. ${title}${tail}`);
    }
    return lines;
  }
}
