import type { RuntimeVerdictView } from '@rackseal/api-contracts';
import { instant } from '../format';

/**
 * The last verdict of the group's runtime policy on the machine's IMA list (issue 17): pass or fail,
 * the mode (a failure quarantines only in enforce), what was checked, and each failed entry with its
 * file, digest and the rule it broke — the words say it, the colour adds nothing.
 */
export function RuntimeVerdict({ verdict }: { verdict: RuntimeVerdictView }) {
  const failed = verdict.decision === 'fail';
  return (
    <>
      <p>
        <strong>{failed ? '≠ fails' : '= passes'}</strong> the runtime policy (mode {verdict.mode}, sha256 <code class="digest">{verdict.policySha256.slice(0, 16)}</code>…) at{' '}
        {instant(verdict.at)}: entries {verdict.firstEntry} to {verdict.firstEntry + verdict.entriesChecked} checked ({verdict.entriesChecked}), next round from entry {verdict.nextEntry}.
        {failed && verdict.mode === 'warn' ? ' Recorded only (warn mode): the machine stays attested.' : ''}
      </p>
      {verdict.reason !== undefined && <p>{verdict.reason}</p>}
      {verdict.failures.length > 0 && (
        <table class="runtime-failures">
          <caption>
            Failed entries ({verdict.failureCount}
            {verdict.failureCount > verdict.failures.length ? `, the first ${verdict.failures.length} shown` : ''})
          </caption>
          <thead>
            <tr>
              <th scope="col">Entry</th>
              <th scope="col">File</th>
              <th scope="col">Digest</th>
              <th scope="col">Why</th>
            </tr>
          </thead>
          <tbody>
            {verdict.failures.map((f) => (
              <tr key={f.index}>
                <td>{f.index}</td>
                <td>
                  <code>{f.path}</code>
                </td>
                <td>
                  <code class="digest">{f.digest}</code>
                </td>
                <td>
                  {f.kind} ({f.rule}){f.expected !== undefined && f.expected.length > 0 ? `; allowed: ${f.expected.join(', ')}` : ''}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
