import { evaluationContext, type ImaVerdict, type LearnedKey } from './evaluate';
import { ExcludeBudgetError } from './exclude-matcher';
import { judgeEntries, type JudgedEntries } from './judge-entries';
import { digestSize, type ImaBank, isImaBank } from './hash-algorithms';
import type { ImaEntry } from './ima-entry';
import { replayImaEntries, zeroPcr } from './replay';
import type { RuntimePolicy } from './runtime-policy';
import { printable } from './template-fields';

/**
 * What the verifier keeps per machine between quotes (Keylime's AgentAttestState, as plain data to
 * store as JSON): the next entry to ask the agent for, PCR 10 after the entries before it, the boot
 * it belongs to, how many entries the last quote had not covered yet, and the keys learned from
 * allowed keyring measurements. A reboot, a bank change or any failure restarts from zero.
 */
export interface ImaAttestationState {
  readonly version: 1;
  readonly bank: ImaBank;
  /** The boot the state belongs to (the machine's boot time, or its event log's digest); null after a reset. */
  readonly bootTime: string | null;
  /** Entries [0, nextEntry) are verified and covered by a quote. */
  readonly nextEntry: number;
  /** PCR 10 after entry nextEntry − 1, hex. */
  readonly pcr10: string;
  /** Entries after nextEntry the last round received but its quote did not cover yet. */
  readonly pendingEntries: number;
  readonly learnedKeys: readonly LearnedKey[];
}

export function initialImaState(bank: ImaBank, bootTime: string | null = null): ImaAttestationState {
  return { version: 1, bank, bootTime, nextEntry: 0, pcr10: zeroPcr(bank).toString('hex'), pendingEntries: 0, learnedKeys: [] };
}

/** Checks a stored state's shape (it comes back from a database); undefined when it is not one. */
export function readImaState(value: unknown): ImaAttestationState | undefined {
  if (typeof value !== 'object' || value === null) {
    return undefined;
  }
  const s = value as Record<string, unknown>;
  const ok =
    s.version === 1 &&
    isImaBank(s.bank) &&
    (s.bootTime === null || typeof s.bootTime === 'string') &&
    Number.isSafeInteger(s.nextEntry) &&
    (s.nextEntry as number) >= 0 &&
    typeof s.pcr10 === 'string' &&
    new RegExp(`^[0-9a-f]{${digestSize(s.bank as ImaBank) * 2}}$`).test(s.pcr10) &&
    Number.isSafeInteger(s.pendingEntries) &&
    (s.pendingEntries as number) >= 0 &&
    Array.isArray(s.learnedKeys) &&
    s.learnedKeys.every((k: unknown) => typeof k === 'object' && k !== null && typeof (k as LearnedKey).keyring === 'string' && typeof (k as LearnedKey).spki === 'string' && Number.isInteger((k as LearnedKey).keyId));
  return ok ? (s as unknown as ImaAttestationState) : undefined;
}

export interface ImaEvidence {
  readonly bank: ImaBank;
  /** The machine's current boot (boot time, or a digest of its measured-boot event log). */
  readonly bootTime: string;
  /** Index of entries[0] in the machine's list: the state's nextEntry, or 0 for a full list. */
  readonly startIndex: number;
  readonly entries: readonly ImaEntry[];
  /** PCR 10 in `bank` from the verified quote. */
  readonly quotedPcr10: Buffer;
  /** boot_aggregate values computed from the quoted PCRs 0–9 (hex), allowed for the boot_aggregate entry. */
  readonly bootAggregates?: readonly string[];
  /**
   * The template-hash algorithm of `entries` (the list they were parsed from, ImaListOptions): sha1
   * for binary_runtime_measurements, the bank's for a per-bank list. Default: the policy's
   * `ima.log_hash_alg`.
   */
  readonly templateHashAlgorithm?: ImaBank;
}

export type ImaOutcome = 'verified' | 'failed' | 'restart';

export interface ImaAttestationResult {
  /**
   * `verified`: the quote covers a prefix of the entries and every entry passed. `failed`: a verdict
   * failed, or the list does not reach the quoted PCR 10, or the quote fell behind; the state is reset.
   * `restart`: the state is for another boot (or was reset) and the agent sent a window, not the
   * whole list — ask again from entry 0.
   */
  readonly outcome: ImaOutcome;
  /** Why the round failed or restarts, in one line (verdict failures are in `failures`). */
  readonly reason?: string;
  /** Entries of the machine's list covered by the quote after this round (its global count), when matched. */
  readonly coveredEntries: number | null;
  /** Every entry's verdict, in the entries' order: built when first read (a passing round needs none of them). */
  readonly verdicts: readonly ImaVerdict[];
  /** The verdicts that failed, in order. */
  readonly failures: readonly ImaVerdict[];
  /** The state to store for the next round. */
  readonly state: ImaAttestationState;
}

/**
 * One round of runtime attestation: continue `state` with the new entries and the quoted PCR 10.
 * Entries are replayed from the state's PCR 10; the quote must equal PCR 10 after some prefix of them
 * (the log may run ahead of the quote), and that prefix must cover at least the entries the last
 * round left uncovered (Keylime's quote-progress check, agentstates.py). Every entry sent is judged,
 * covered or not: an entry ahead of the quote may be fabricated, but failing on it costs nothing the
 * machine's root could not cause anyway, and a real one is caught a round earlier.
 */
export function attestImaMeasurements(previous: ImaAttestationState | undefined, evidence: ImaEvidence, policy: RuntimePolicy): ImaAttestationResult {
  let state = previous ?? initialImaState(evidence.bank, evidence.bootTime);
  const restartFrom = (reason: string): ImaAttestationResult => ({
    outcome: 'restart',
    reason,
    coveredEntries: null,
    verdicts: [],
    failures: [],
    state: initialImaState(evidence.bank, evidence.bootTime),
  });
  let why: string | undefined;
  if (state.bank !== evidence.bank) {
    why = `PCR bank changed from ${state.bank} to ${evidence.bank}`;
  } else if (state.bootTime !== evidence.bootTime) {
    why = state.bootTime === null ? 'no state for this boot' : 'the machine rebooted';
  }
  if (why !== undefined) {
    state = initialImaState(evidence.bank, evidence.bootTime);
    if (evidence.startIndex !== 0) {
      return restartFrom(`${why}: the whole list is needed (from entry 0)`);
    }
  }
  const fail = (reason: string, judged?: JudgedEntries, coveredEntries: number | null = null): ImaAttestationResult => ({
    outcome: 'failed',
    reason,
    coveredEntries,
    get verdicts() {
      return judged?.all() ?? [];
    },
    failures: judged?.failures ?? [],
    // Keylime resets on any failure: the next round replays the whole list.
    state: initialImaState(evidence.bank, null),
  });
  if (evidence.startIndex !== state.nextEntry) {
    return fail(`the entries start at ${evidence.startIndex}, the state expects ${state.nextEntry}`);
  }
  if (evidence.quotedPcr10.length !== digestSize(evidence.bank)) {
    return fail(`quoted PCR 10 is ${evidence.quotedPcr10.length} bytes, a ${evidence.bank} PCR ${digestSize(evidence.bank)}`);
  }
  const misplaced = evidence.entries.findIndex((e, i) => e.index !== evidence.startIndex + i);
  if (misplaced !== -1) {
    return fail(`entry ${misplaced} of the window has index ${evidence.entries[misplaced]!.index}, expected ${evidence.startIndex + misplaced}`);
  }
  const replay = replayImaEntries(evidence.entries, Buffer.from(state.pcr10, 'hex'), evidence.quotedPcr10, {
    bank: evidence.bank,
    templateHashAlgorithm: evidence.templateHashAlgorithm ?? policy.logHashAlgorithm,
  });
  const context = evaluationContext(policy, state.learnedKeys, evidence.bootAggregates);
  let judged: JudgedEntries;
  try {
    judged = judgeEntries(evidence.entries, replay.invalidTemplateHashes, policy, context);
  } catch (error) {
    if (!(error instanceof ExcludeBudgetError)) {
      throw error;
    }
    // Undecided is not allowed: the round fails, and the operator is told which pattern set to simplify.
    return fail(`${error.message} (at the path ${JSON.stringify(printable(error.path))}): simplify the runtime policy's excludes (a counted repetition after .* makes its matcher exponential)`);
  }
  const { failures, learnedAt } = judged;
  if (replay.matchedAt === null) {
    return fail(
      `the list does not reach the quoted PCR 10 (${evidence.quotedPcr10.toString('hex')}); replaying all ${evidence.entries.length} new entries gives ${replay.final.toString('hex')}`,
      judged,
    );
  }
  const covered = evidence.startIndex + replay.matchedAt;
  if (replay.matchedAt < state.pendingEntries) {
    return fail(
      `the quote covers ${replay.matchedAt} new entries, fewer than the ${state.pendingEntries} the previous round had already seen: PCR 10 is not catching up with the list`,
      judged,
      covered,
    );
  }
  if (failures.length > 0) {
    return fail(`${failures.length} entr${failures.length === 1 ? 'y' : 'ies'} failed the runtime policy`, judged, covered);
  }
  const learnedKeys = [...state.learnedKeys, ...context.learned.filter((_, k) => learnedAt[k]! < replay.matchedAt!)];
  return {
    outcome: 'verified',
    coveredEntries: covered,
    get verdicts() {
      return judged.all();
    },
    failures,
    state: {
      version: 1,
      bank: evidence.bank,
      bootTime: evidence.bootTime,
      nextEntry: covered,
      pcr10: replay.matchedValue!.toString('hex'),
      pendingEntries: evidence.entries.length - replay.matchedAt,
      learnedKeys,
    },
  };
}
