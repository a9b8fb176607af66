import type { GroupPolicy, PolicySetChange } from '@rackseal/api-contracts';
import { useState } from 'preact/hooks';
import { api, segment } from '../api';
import { Modal } from './modal';

/**
 * Approve a boot state from stated values (POST …/policy/sets, audited as the token): a label and
 * one digest per PCR of the policy, prefilled from its first set so a rollout that changes one PCR
 * changes one field. The server validates the whole policy (bank sizes, hex) and names the field.
 */
export function ApproveSetDialog({ policy, onClose, onDone, onError }: { policy: GroupPolicy; onClose: () => void; onDone: (message: string) => void; onError: (error: unknown) => void }) {
  const { pcrs, allowedSets, bank } = policy.policy;
  const [label, setLabel] = useState('');
  const [values, setValues] = useState<Record<string, string>>(() => ({ ...(allowedSets[0]?.values ?? {}) }));
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const replaces = allowedSets.some((s) => s.label === label.trim());

  async function approve(): Promise<void> {
    setBusy(true);
    setError(undefined);
    try {
      const change = await api<PolicySetChange>('POST', `/v1/groups/${segment(policy.group)}/policy/sets`, {
        label: label.trim(),
        values: Object.fromEntries(pcrs.map((pcr) => [String(pcr), (values[String(pcr)] ?? '').trim()])),
      });
      onDone(`Set “${change.label}” ${change.replaced ? 'replaced' : 'approved'} (approval epoch ${change.approvalEpoch}).`);
    } catch (caught) {
      setError(`Refused: ${(caught as Error).message}`);
      setConfirming(false);
      onError(caught);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Modal title={`Approve a boot state for group ${policy.group}`} onClose={onClose}>
      <form
        class="stacked"
        onSubmit={(event) => {
          event.preventDefault();
          setConfirming(true);
        }}
      >
        <label for="approve-label">Label of the new allowed set</label>
        <input id="approve-label" required maxLength={64} value={label} onInput={(event) => { setLabel((event.target as HTMLInputElement).value); setConfirming(false); }} />
        <fieldset>
          <legend>
            PCR values ({bank}, hex){allowedSets[0] === undefined ? '' : `, prefilled from set “${allowedSets[0].label}”`}
          </legend>
          {pcrs.map((pcr) => (
            <div class="pcr-field" key={pcr}>
              <label for={`approve-pcr-${pcr}`}>PCR {pcr}</label>
              <input
                id={`approve-pcr-${pcr}`}
                class="digest"
                required
                spellcheck={false}
                autocomplete="off"
                value={values[String(pcr)] ?? ''}
                onInput={(event) => {
                  setValues({ ...values, [String(pcr)]: (event.target as HTMLInputElement).value });
                  setConfirming(false);
                }}
              />
            </div>
          ))}
        </fieldset>
        {!confirming && <button type="submit">Review…</button>}
      </form>
      {confirming && (
        <p role="status" class="confirm-question">
          Approve set “{label.trim()}”{replaces ? ', replacing the current set of that label (its old values are withdrawn: a new approval epoch)' : ''}? Machines booting these values attest, and
          envelopes sealed to the group open in this state. Recorded in the audit log.
        </p>
      )}
      {error !== undefined && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      <p class="actions">
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        {confirming && (
          <button type="button" class="primary" disabled={busy} onClick={() => void approve()}>
            Approve
          </button>
        )}
      </p>
    </Modal>
  );
}
