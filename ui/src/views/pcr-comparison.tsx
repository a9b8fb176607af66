import type { GroupPolicy, MachineEvidence } from '@rackseal/api-contracts';
import { instant } from '../format';

/** The PCRs of the policy (or, without one, of the evidence), in numeric order. */
function pcrsOf(policy: GroupPolicy | null, evidence: MachineEvidence): number[] {
  return policy !== null ? [...policy.policy.pcrs] : Object.keys(evidence.values).map(Number).sort((a, b) => a - b);
}

/**
 * The machine's quoted PCR values against each allowed set of its group's policy. A differing PCR is
 * marked by the word "differs" and a ≠ sign, and highlighted; the colour adds nothing the text does
 * not say. The events that make the difference are named by the attestation's explanation, shown
 * beside this table (MachinePage).
 */
export function PcrComparison({ evidence, policy }: { evidence: MachineEvidence; policy: GroupPolicy | null }) {
  const pcrs = pcrsOf(policy, evidence);
  const sets = policy?.policy.allowedSets ?? [];
  const differing = sets.map((set) => pcrs.filter((pcr) => set.values[String(pcr)] !== evidence.values[String(pcr)]).length);
  return (
    <table class="pcrs">
      <caption>
        Quote of {instant(evidence.at)} ({evidence.bank}) against {sets.length === 0 ? 'no allowed set' : `${sets.length} allowed set${sets.length === 1 ? '' : 's'}`}
        {policy === null ? ' (no policy for this group, or no policy:read scope)' : `, mode ${policy.policy.mode}`}
      </caption>
      <thead>
        <tr>
          <th scope="col">PCR</th>
          <th scope="col">Measured</th>
          {sets.map((set, i) => (
            <th scope="col" key={set.label}>
              Set “{set.label}” ({differing[i] === 0 ? 'all match' : `${differing[i]} differ`})
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {pcrs.map((pcr) => {
          const measured = evidence.values[String(pcr)];
          return (
            <tr key={pcr}>
              <th scope="row">{pcr}</th>
              <td>
                <code class="digest">{measured ?? 'not quoted'}</code>
              </td>
              {sets.map((set) => {
                const allowed = set.values[String(pcr)];
                const same = allowed === measured;
                return (
                  <td key={set.label} class={same ? 'pcr-same' : 'pcr-differs'}>
                    <strong>{same ? '= matches' : '≠ differs'}</strong>
                    {!same && (
                      <>
                        <br />
                        <code class="digest">{allowed ?? 'not in set'}</code>
                      </>
                    )}
                  </td>
                );
              })}
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
