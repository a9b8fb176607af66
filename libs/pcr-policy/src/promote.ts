import { hashAlgorithmByBank } from '@rackseal/tpm2';
import { checkEventLogSize, parseReferenceLog } from './event-log-field';
import { digestOf, labelOf, machineOf, parsePcrPolicy } from './parse-policy';
import { PcrPolicyError } from './pcr-policy-error';
import { MAX_ALLOWED_SETS, type PcrPolicy, type PcrValueSet, type QuotedPcrValues } from './pcr-policy';
import { echoed } from './text';

/**
 * The set `policy promote` adds: a canary machine's quoted values of the policy's PCRs, with the
 * canary's event log so later mismatches can be explained against it. The quote must be of the
 * policy's bank and cover every PCR of the list; the log (when given) must parse and carry that bank.
 * Other quoted PCRs are left out. `at` is when the canary's quote was verified.
 *
 * Takes the policy (its bank and PCRs) besides the brief's arguments: a set carries no bank, and
 * sha256 and sha3_256 values have the same length, so only the policy can tell a set of the wrong bank.
 */
export function promoteToSet(
  policy: Pick<PcrPolicy, 'bank' | 'pcrs'>,
  label: string,
  machine: string,
  quoted: QuotedPcrValues,
  eventLog: Buffer | undefined,
  at: Date,
): PcrValueSet {
  const hash = hashAlgorithmByBank(policy.bank);
  labelOf('label', label);
  machineOf('promotedFrom.machine', machine);
  if (Number.isNaN(at.getTime())) {
    throw new PcrPolicyError('promotedFrom.at', 'is not a valid date');
  }
  if (quoted.bank !== policy.bank) {
    throw new PcrPolicyError('quoted.bank', `the canary's quote is of the ${echoed(quoted.bank, 16)} bank, the policy's is ${policy.bank}`);
  }
  const values: Record<number, string> = {};
  for (const pcr of policy.pcrs) {
    const value = quoted.values.get(pcr);
    if (value === undefined) {
      throw new PcrPolicyError(`quoted.values.${pcr}`, `the canary's quote has no value for PCR ${pcr} of the policy`);
    }
    values[pcr] = digestOf(`quoted.values.${pcr}`, value.toString('hex'), hash);
  }
  const promotedFrom = { machine, at: at.toISOString() };
  if (eventLog === undefined) {
    return { label, values, promotedFrom };
  }
  checkEventLogSize('promotedFrom.eventLog', eventLog);
  parseReferenceLog('promotedFrom.eventLog', eventLog, hash.bank, hash.alg);
  return { label, values, promotedFrom: { ...promotedFrom, eventLog: eventLog.toString('base64') } };
}

/**
 * The policy with `set` added, or put in place of the set with the same label (so promoting the same
 * canary again updates its set instead of growing the list). Refuses a 17th set; the result is
 * validated as a whole by parsePcrPolicy, so a set of other PCRs or digest sizes is refused too.
 */
export function withSet(policy: PcrPolicy, set: PcrValueSet): PcrPolicy {
  const at = policy.allowedSets.findIndex((s) => s.label === set.label);
  if (at < 0 && policy.allowedSets.length >= MAX_ALLOWED_SETS) {
    throw new PcrPolicyError('allowedSets', `already holds ${MAX_ALLOWED_SETS} sets, the most a policy has: remove one before adding "${set.label}"`);
  }
  const allowedSets = at < 0 ? [...policy.allowedSets, set] : policy.allowedSets.map((s, i) => (i === at ? set : s));
  return parsePcrPolicy({ ...policy, allowedSets });
}

/**
 * The policy without the set `label` (an operator withdrawing an approved state). Refuses an unknown
 * label, and the last set: a policy allows at least one state; removing the policy is its own act.
 */
export function withoutSet(policy: PcrPolicy, label: string): PcrPolicy {
  if (!policy.allowedSets.some((s) => s.label === label)) {
    throw new PcrPolicyError('label', `the policy has no set "${label}" (its sets: ${policy.allowedSets.map((s) => `"${s.label}"`).join(', ')})`);
  }
  if (policy.allowedSets.length === 1) {
    throw new PcrPolicyError('label', `"${label}" is the policy's only set: a policy allows at least one state (remove the whole policy to allow none)`);
  }
  return parsePcrPolicy({ ...policy, allowedSets: policy.allowedSets.filter((s) => s.label !== label) });
}
