import type { PolicyPromotion, PromotePreview } from '@rackseal/api-contracts';
import { useState } from 'preact/hooks';
import { api, segment } from '../api';
import { instant } from '../format';
import { Modal } from './modal';

/**
 * Promote a canary: name the machine and the set's label, see what would change (GET
 * …/policy/promote-preview: the new values, the PCRs that differ from each allowed set, how many
 * failing machines it recovers), then confirm (POST …/policy/promote, audited as the token). A new
 * machine or label takes the operator back to the preview: what is confirmed is what was shown.
 */
export function PromoteDialog({
  group,
  machine: initialMachine,
  onClose,
  onDone,
  onError,
}: {
  group: string;
  machine: string;
  onClose: () => void;
  onDone: (message: string) => void;
  onError: (error: unknown) => void;
}) {
  const [machine, setMachine] = useState(initialMachine);
  const [label, setLabel] = useState('');
  const [preview, setPreview] = useState<PromotePreview | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  async function showPreview(event: Event): Promise<void> {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      setPreview(await api<PromotePreview>('GET', `/v1/groups/${segment(group)}/policy/promote-preview?machine=${encodeURIComponent(machine.trim())}`));
    } catch (caught) {
      setError(`Refused: ${(caught as Error).message}`);
      onError(caught);
    } finally {
      setBusy(false);
    }
  }

  async function promote(): Promise<void> {
    if (preview === undefined) {
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      const done = await api<PolicyPromotion>('POST', `/v1/groups/${segment(group)}/policy/promote`, { machine: preview.machine.id, label: label.trim(), registrationId: preview.evidence.registrationId });
      onDone(`Promoted ${done.machine.serial}: set “${done.label}” ${done.replaced ? 'replaced' : 'approved'}${done.created ? ' (the group\'s first policy)' : ''}.`);
    } catch (caught) {
      setError(`Refused: ${(caught as Error).message}`);
      onError(caught);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Modal title={`Promote a canary into group ${group}`} onClose={onClose}>
      <form class="stacked" onSubmit={(event) => void showPreview(event)}>
        <label for="promote-machine">Machine (serial or id)</label>
        <input
          id="promote-machine"
          required
          value={machine}
          onInput={(event) => {
            setMachine((event.target as HTMLInputElement).value);
            setPreview(undefined);
          }}
        />
        <label for="promote-label">Label of the new allowed set</label>
        <input id="promote-label" required maxLength={64} value={label} onInput={(event) => setLabel((event.target as HTMLInputElement).value)} aria-describedby="promote-label-help" />
        <p id="promote-label-help" class="help">
          A set of the same label is replaced.
        </p>
        <button type="submit" disabled={busy}>
          Preview
        </button>
      </form>
      {preview !== undefined && <PreviewBody preview={preview} label={label.trim()} />}
      {error !== undefined && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      <p class="actions">
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        {preview !== undefined && (
          <button type="button" class="primary" disabled={busy || label.trim() === ''} onClick={() => void promote()}>
            Confirm promotion
          </button>
        )}
      </p>
    </Modal>
  );
}

function PreviewBody({ preview, label }: { preview: PromotePreview; label: string }) {
  const replaces = preview.comparedSets.some((s) => s.label === label);
  const { recovers } = preview;
  return (
    <section aria-labelledby="preview-heading" class="preview">
      <h3 id="preview-heading">What changes</h3>
      <p>
        {preview.policyExists ? 'Approves' : 'Creates the group\'s policy (mode enforce) with'} the PCR values of {preview.machine.serial}'s quote of {instant(preview.evidence.at)} ({preview.bank})
        {label === '' ? '' : ` as set “${label}”`}
        {replaces ? `, replacing the current set “${label}”` : ''}.
      </p>
      {preview.sameAsSet !== null && <p class="warn">⚠ Set “{preview.sameAsSet}” already allows exactly these values.</p>}
      <p>
        {preview.newPcrValues.length === 0 ? 'No PCR takes a value the current sets do not already allow.' : `New values for PCR ${preview.newPcrValues.join(', ')}: no current set has them.`}
      </p>
      <table class="pcrs">
        <caption>The new set against the current allowed sets</caption>
        <thead>
          <tr>
            <th scope="col">PCR</th>
            <th scope="col">New value</th>
            {preview.comparedSets.map((s) => (
              <th scope="col" key={s.label}>
                Set “{s.label}” ({s.differingPcrs.length === 0 ? 'all match' : `${s.differingPcrs.length} differ`})
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {preview.pcrs.map((pcr) => (
            <tr key={pcr}>
              <th scope="row">{pcr}</th>
              <td>
                <code class="digest">{preview.values[String(pcr)]}</code>
              </td>
              {preview.comparedSets.map((s) => {
                const differs = s.differingPcrs.includes(pcr);
                return (
                  <td key={s.label} class={differs ? 'pcr-differs' : 'pcr-same'}>
                    <strong>{differs ? '≠ differs' : '= same'}</strong>
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
      <p class="recovers">
        <strong>
          Recovers {recovers.count} of {recovers.failingCompared} failing machine{recovers.failingCompared === 1 ? '' : 's'}
        </strong>{' '}
        at their next attestation (their newest quote has exactly these values){recovers.serials.length > 0 ? `: ${recovers.serials.join(', ')}${recovers.count > recovers.serials.length ? ', …' : ''}` : ''}.
      </p>
    </section>
  );
}
