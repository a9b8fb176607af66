import type { JsonValue } from '@rackseal/audit';
import {
  attestImaMeasurements,
  bootAggregate,
  type ImaAttestationResult,
  type ImaBank,
  type ImaEntry,
  ImaParseError,
  type ImaVerdict,
  IMA_PCR,
  initialImaState,
  isImaBank,
  parseBinaryMeasurementList,
  RUNTIME_POLICY_LIMITS,
} from '@rackseal/ima';
import type { Machine } from '@rackseal/machines';
import { ATTESTATION_LIMITS, IMA_TEMPLATE_HASH_ALGORITHMS, type ImaMeasurementsWire, type ImaOutcomeWire } from '@rackseal/node-api-contracts';
import type { TPMS_CLOCK_INFO } from '@rackseal/tpm2';
import type { EntityManager } from 'typeorm';
import { AttestationError } from './attestation-errors';
import type { Registration } from './attestation.repository';
import { MachineImaRepository, type ObservedRound, type RuntimeFailure, type RuntimeVerdict } from './machine-ima.repository';
import { RuntimePoliciesRepository, type RuntimePolicyMode } from './runtime-policies.repository';
import { decodeField } from './wire-input';

/** Failures a verdict keeps, and lines a refusal or the finish answer shows: the first ones (the count is kept whole). */
export const RUNTIME_FAILURES_KEPT = 50;
const RUNTIME_LINES_SHOWN = 20;
/** Digests a machine's observed rounds keep for `--from-machine`, per boot (about 10 MB of JSON at most). */
export const OBSERVED_DIGEST_LIMIT = 100_000;
/**
 * And at most this much policy JSON (a path, quoted, and its digest per digest kept): half the
 * largest runtime policy (RUNTIME_POLICY_LIMITS.bytes), so a capture always makes a policy that can be
 * set. A machine sending 100,000 paths of 4 KiB each would otherwise have the server keep 400 MB for
 * it, and `--from-machine` build a document it then refuses (or that does not fit in a string).
 */
export const OBSERVED_BYTES_LIMIT = RUNTIME_POLICY_LIMITS.bytes / 2;

/** What the runtime policy decided for one finish. */
export type RuntimeCheck =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'judged';
      readonly pass: boolean;
      readonly mode: RuntimePolicyMode;
      readonly wire: ImaOutcomeWire;
      /** The explanation: the reason (if any) and one line per failure, bounded. */
      readonly lines: readonly string[];
      /** For the attestation's one audit record (no list, no policy: counts, digest, the first failures). */
      readonly audit: { readonly [key: string]: JsonValue };
    };

export interface RuntimeCheckInput {
  readonly registration: Registration;
  readonly machine: Machine;
  readonly values: ReadonlyMap<number, Buffer>;
  readonly clockInfo: TPMS_CLOCK_INFO;
  readonly ima: ImaMeasurementsWire | undefined;
  readonly now: Date;
}

/**
 * The boot a quote belongs to: the TPM's reset and restart counts from the signed clock info (TPM
 * 2.0 Part 2 §10.11.1). Either changes at a reboot (and PCR 10 starts again at zero), and neither
 * can be chosen by the machine's software.
 */
export function bootOf(clock: TPMS_CLOCK_INFO): string {
  return `tpm-reset:${clock.resetCount}.${clock.restartCount}`;
}

function failureOf(v: ImaVerdict): RuntimeFailure {
  return { index: v.index, kind: v.kind, path: v.path, digest: v.digest, rule: v.rule, ...(v.expected === undefined ? {} : { expected: v.expected.slice(0, 8) }) };
}

/** One line naming the file, its digest and the rule broken. */
export function failureLine(f: RuntimeFailure): string {
  const expected = f.expected === undefined || f.expected.length === 0 ? '' : `; allowed: ${f.expected.join(', ')}`;
  return `entry ${f.index} ${f.path} ${f.digest}: ${f.kind} (${f.rule}${expected})`;
}

/**
 * The runtime half of a finish (issue 17): when the machine's group has a runtime policy, the IMA
 * entries the agent sent are replayed from the machine's stored state against the quoted PCR 10
 * (libs/ima attestImaMeasurements) and judged by the policy; the new state, the verdict and the
 * observed measurements are written in the finish's transaction. A reboot with a window from entry
 * > 0 refuses the finish with attestation.ima-restart, the state reset for the new boot, so the
 * agent's next start is asked for the whole list.
 */
export class RuntimeIntegrityCheck {
  constructor(
    private readonly policies: RuntimePoliciesRepository,
    private readonly states: MachineImaRepository,
  ) {}

  /** What a start asks of the machine's list: undefined when its group has no runtime policy. */
  async request(machine: Machine, m: EntityManager): Promise<{ fromEntry: number } | undefined> {
    if (machine.group === null || (await this.policies.summary(machine.group, m)) === undefined) {
      return undefined;
    }
    return { fromEntry: (await this.states.stateOf(machine.id, m))?.nextEntry ?? 0 };
  }

  async check(m: EntityManager, input: RuntimeCheckInput): Promise<RuntimeCheck> {
    const { registration, machine } = input;
    const found = machine.group === null ? undefined : await this.policies.compiledFor(machine.group, m);
    if (found === undefined) {
      return { kind: 'none' };
    }
    const { summary: stored, policy } = found;
    const quoted = input.values.get(IMA_PCR);
    if (quoted === undefined || !isImaBank(registration.pcrBank)) {
      throw new AttestationError(
        'attestation.ima-pcr-missing',
        `group ${machine.group!} has a runtime policy, and this quote does not cover PCR ${IMA_PCR} of an IMA bank (${registration.pcrBank}:${registration.pcrs.join(',')}): start again, the new selection holds it`,
      );
    }
    const bank: ImaBank = registration.pcrBank;
    const record = await this.states.getForUpdate(machine.id, m);
    const bootTime = bootOf(input.clockInfo);
    const entriesBytes = input.ima === undefined || input.ima.entries === '' ? Buffer.alloc(0) : decodeField('ima.entries', input.ima.entries, ATTESTATION_LIMITS.imaEntriesBytes);

    const templateHashAlgorithm = listAlgorithm(input.ima, policy.logHashAlgorithm);

    let result: ImaAttestationResult;
    let entries: ImaEntry[] = [];
    const firstEntry = input.ima?.firstEntry ?? 0;
    if (input.ima === undefined) {
      result = failed(bank, 'the agent sent no IMA measurement list (the start answer asked for it)');
    } else {
      try {
        entries = parseBinaryMeasurementList(entriesBytes, { firstIndex: firstEntry, templateHashAlgorithm });
      } catch (error) {
        if (!(error instanceof ImaParseError)) {
          throw error;
        }
        result = failed(bank, `the IMA list does not parse as a list of ${templateHashAlgorithm} template hashes (cut or malformed): ${error.message}`);
      }
      result ??= attestImaMeasurements(
        record.state,
        { bank, bootTime, startIndex: firstEntry, entries, quotedPcr10: quoted, bootAggregates: bootAggregatesOf(bank, input.values), templateHashAlgorithm },
        policy,
      );
    }

    if (result.outcome === 'restart') {
      await this.states.save(machine.id, { state: result.state, verdict: record.verdict }, input.now, m);
      await this.states.keepObservedFor(machine.id, bootTime, 0, m);
      throw new AttestationError('attestation.ima-restart', `${result.reason ?? 'the runtime state is for another boot'}: start again, the next start asks for the IMA list from entry 0`);
    }
    const pass = result.outcome === 'verified';
    const failures = result.failures.map(failureOf);
    const nextEntry = result.state.nextEntry;
    const verdict: RuntimeVerdict = {
      at: input.now.toISOString(),
      registrationId: registration.id,
      decision: pass ? 'pass' : 'fail',
      mode: stored.mode,
      policySha256: stored.sha256,
      ...(result.reason === undefined || pass ? {} : { reason: result.reason }),
      firstEntry,
      entriesChecked: entries.length,
      nextEntry,
      failureCount: failures.length,
      failures: failures.slice(0, RUNTIME_FAILURES_KEPT),
    };
    await this.states.save(machine.id, { state: result.state, verdict }, input.now, m);
    const kept = await this.states.keepObservedFor(machine.id, bootTime, firstEntry, m);
    const round = observeRound(firstEntry, entries, result, OBSERVED_DIGEST_LIMIT - kept.count, OBSERVED_BYTES_LIMIT - kept.bytes);
    if (round.count > 0 || round.truncated) {
      await this.states.appendObserved(machine.id, bootTime, firstEntry, round, m);
    }

    const failureLines = failures.slice(0, RUNTIME_LINES_SHOWN).map(failureLine);
    if (failures.length > RUNTIME_LINES_SHOWN) {
      failureLines.push(`… and ${failures.length - RUNTIME_LINES_SHOWN} more failed entries`);
    }
    const lines = pass ? [] : [...(failures.length === 0 && result.reason !== undefined ? [result.reason] : []), ...failureLines];
    return {
      kind: 'judged',
      pass,
      mode: stored.mode,
      wire: { decision: pass ? 'pass' : 'fail', entriesChecked: entries.length, nextEntry, failures: lines },
      lines,
      audit: {
        decision: verdict.decision,
        mode: stored.mode,
        policySha256: stored.sha256,
        firstEntry,
        entriesChecked: entries.length,
        nextEntry,
        templateHashAlgorithm,
        // The policy's ima.log_hash_alg gives way to the algorithm the agent names (docs/decisions.md, "Per-bank IMA lists").
        ...(templateHashAlgorithm === policy.logHashAlgorithm ? {} : { policyLogHashAlgorithm: policy.logHashAlgorithm }),
        failureCount: failures.length,
        ...(pass ? {} : { failures: lines.slice(0, 5) }),
      },
    };
  }
}

/**
 * The template-hash algorithm of the entries a finish carries: the one the agent names (it read the
 * per-bank list binary_runtime_measurements_<bank>, whose template hashes are under that bank's
 * hash), else the policy's `ima.log_hash_alg` (agents that name none send the configured list, which
 * is what log_hash_alg describes in Keylime). A name that is not an IMA bank is refused — the DTO
 * refuses it first; this holds for callers that skip it.
 */
function listAlgorithm(ima: ImaMeasurementsWire | undefined, policyAlgorithm: ImaBank): ImaBank {
  const named: unknown = ima?.templateHashAlgorithm;
  if (named === undefined) {
    return policyAlgorithm;
  }
  if (!isImaBank(named)) {
    throw new AttestationError('attestation.malformed', `ima.templateHashAlgorithm must be one of ${IMA_TEMPLATE_HASH_ALGORITHMS.join(', ')}`);
  }
  return named;
}

/** A round failed before the library judged it: nothing checked, the state reset (the next round from 0). */
function failed(bank: ImaBank, reason: string): ImaAttestationResult {
  return { outcome: 'failed', reason, coveredEntries: null, verdicts: [], failures: [], state: initialImaState(bank, null) };
}

/** boot_aggregate from the quoted PCRs 0–9 (0–7 for SHA-1) when the quote holds them all; Keylime allows that value for the entry. */
function bootAggregatesOf(bank: ImaBank, values: ReadonlyMap<number, Buffer>): string[] | undefined {
  const count = bank === 'sha1' ? 8 : 10;
  const pcrs = Array.from({ length: count }, (_, i) => values.get(i));
  return pcrs.every((v) => v !== undefined) ? [bootAggregate(bank, pcrs as Buffer[]).toString('hex')] : undefined;
}

/** Verdicts whose entry is not a measurement to allow later: violations and entries the replay or the template hash disowns. */
const NOT_OBSERVED = new Set(['violation', 'template-hash-mismatch', 'unexpected-pcr']);

/**
 * The files and digests of the entries this round's quote covered (violations and entries the
 * replay disowns left out), at most `room` of them and `bytesRoom` bytes of policy JSON (then truncated).
 */
export function observeRound(firstEntry: number, entries: readonly ImaEntry[], result: ImaAttestationResult, room: number, bytesRoom = OBSERVED_BYTES_LIMIT): ObservedRound {
  // Maps, not objects: a measured path may be "__proto__".
  const digests = new Map<string, string[]>();
  const imaBuf = new Map<string, string[]>();
  let count = 0;
  let bytes = 0;
  let truncated = false;
  const covered = result.coveredEntries === null ? 0 : result.coveredEntries - firstEntry;
  // Those kinds never pass, so the failures name them all (every verdict is built only when read).
  const disowned = new Set(result.failures.filter((v) => NOT_OBSERVED.has(v.kind)).map((v) => v.index));
  for (let i = 0; i < covered && i < entries.length; i += 1) {
    const entry = entries[i]!;
    if (entry.violation || disowned.has(entry.index)) {
      continue;
    }
    const table = entry.templateName === 'ima-buf' ? imaBuf : digests;
    const hex = entry.digest.digest.toString('hex');
    const known = table.get(entry.path) ?? [];
    if (known.includes(hex)) {
      continue;
    }
    // As the policy JSON holds it: `"path":["hex"],` (the path escaped as JSON escapes it).
    const size = Buffer.byteLength(JSON.stringify(entry.path)) + hex.length + 6;
    if (count >= room || bytes + size > bytesRoom) {
      truncated = true;
      break;
    }
    table.set(entry.path, [...known, hex]);
    count += 1;
    bytes += size;
  }
  return { digests: Object.fromEntries(digests), imaBuf: Object.fromEntries(imaBuf), count, bytes, truncated };
}
