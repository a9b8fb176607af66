import { type GroupDetail, type GroupPolicy, grants, MACHINE_STATES, type PolicySetChange, type PolicyValueSet } from '@rackseal/api-contracts';
import { useState } from 'preact/hooks';
import { api, ApiError, segment } from '../api';
import { duration, instant } from '../format';
import { href } from '../router';
import { useApi } from '../use-api';
import { ApproveSetDialog } from './approve-set-dialog';
import { ConfirmDialog } from './modal';
import { PromoteDialog } from './promote-dialog';
import { StateLabel } from './state-label';

interface GroupData {
  readonly detail: GroupDetail;
  /** Null: the group has no policy. */
  readonly policy: GroupPolicy | null;
}

async function loadGroup(group: string): Promise<GroupData> {
  const [detail, policy] = await Promise.all([
    api<GroupDetail>('GET', `/v1/groups/${segment(group)}`),
    api<GroupPolicy>('GET', `/v1/groups/${segment(group)}/policy`).catch((error: unknown) => {
      if (error instanceof ApiError && error.code === 'policy.not-found') {
        return null;
      }
      throw error;
    }),
  ]);
  return { detail, policy };
}

type Dialog = { readonly kind: 'promote'; readonly machine: string } | { readonly kind: 'approve' } | { readonly kind: 'withdraw'; readonly label: string };

/**
 * One group: its policy (mode, bank, each allowed set's PCR values), its interval, its failing
 * machines with the PCRs they differ in; and, with policy:write, promote a canary, approve a boot
 * state and withdraw one — each behind a dialog, each the API call the CLI makes (audited as the token).
 */
export function GroupPage({ group, scopes, onError }: { group: string; scopes: readonly string[]; onError: (error: unknown) => void }) {
  const [version, setVersion] = useState(0);
  const [notice, setNotice] = useState<string | undefined>();
  const loaded = useApi(() => loadGroup(group), `${group}\n${version}`, onError);
  const changed = (message: string): void => {
    setNotice(message);
    setVersion((v) => v + 1);
  };
  return (
    <>
      <p>
        <a href={href('/groups')}>← All groups</a>
      </p>
      <h1>Group {group}</h1>
      <p role="status">{notice ?? ''}</p>
      {loaded.kind === 'loading' && <p>Loading…</p>}
      {loaded.kind === 'error' && <p role="alert" class="error">Could not load group {group}: {loaded.message}</p>}
      {loaded.kind === 'ok' && <GroupBody data={loaded.value} canWrite={grants(scopes, 'policy:write')} onChanged={changed} onError={onError} />}
    </>
  );
}

function GroupBody({ data, canWrite, onChanged, onError }: { data: GroupData; canWrite: boolean; onChanged: (message: string) => void; onError: (error: unknown) => void }) {
  const { detail, policy } = data;
  const [dialog, setDialog] = useState<Dialog | undefined>();
  const close = (): void => setDialog(undefined);
  const done = (message: string): void => {
    setDialog(undefined);
    onChanged(message);
  };
  const sets = policy?.policy.allowedSets ?? [];
  return (
    <>
      <dl class="facts">
        <dt>Policy mode</dt>
        <dd>{policy === null ? '⚠ no policy: its machines are quarantined at their next attestation' : `${policy.policy.mode} (${policy.policy.mode === 'enforce' ? 'a mismatch quarantines' : 'a mismatch is recorded, the machine stays attested'})`}</dd>
        <dt>Bank and PCRs</dt>
        <dd>{policy === null ? '—' : `${policy.policy.bank}, PCRs ${policy.policy.pcrs.join(', ')}`}</dd>
        <dt>Attestation interval</dt>
        <dd>
          {duration(detail.attestationIntervalSeconds * 1000)}
          {detail.intervalSource === 'fleet-default' ? ' (fleet default)' : ' (the group\'s own)'}
        </dd>
        <dt>Machines</dt>
        <dd>
          <ul class="inline">
            {MACHINE_STATES.map((state) => (
              <li key={state}>
                <a href={href('/machines', { group: detail.group, state })}>
                  <StateLabel state={state} />: {detail.machinesByState[state]}
                </a>
              </li>
            ))}
          </ul>
        </dd>
        <dt>Policy last changed</dt>
        <dd>{policy === null ? '—' : `${instant(policy.updatedAt)} by ${policy.updatedBy}`}</dd>
      </dl>
      <section aria-labelledby="sets">
        <h2 id="sets">Allowed PCR sets</h2>
        {sets.length === 0 && <p>None: promote a canary machine to create the policy.</p>}
        {policy !== null &&
          sets.map((set) => <AllowedSet key={set.label} set={set} pcrs={policy.policy.pcrs} canWithdraw={canWrite && sets.length > 1} onWithdraw={() => setDialog({ kind: 'withdraw', label: set.label })} />)}
        {canWrite && sets.length === 1 && <p class="help">The only set cannot be withdrawn (remove the policy with the CLI instead).</p>}
        {canWrite && (
          <p class="actions">
            {policy !== null && (
              <button type="button" onClick={() => setDialog({ kind: 'approve' })}>
                Approve a boot state…
              </button>
            )}
            <button type="button" onClick={() => setDialog({ kind: 'promote', machine: '' })}>
              Promote a canary…
            </button>
          </p>
        )}
      </section>
      <FailingMachines detail={detail} canWrite={canWrite} onPromote={(machine) => setDialog({ kind: 'promote', machine })} />
      {dialog?.kind === 'promote' && <PromoteDialog group={detail.group} machine={dialog.machine} onClose={close} onDone={done} onError={onError} />}
      {dialog?.kind === 'approve' && policy !== null && <ApproveSetDialog policy={policy} onClose={close} onDone={done} onError={onError} />}
      {dialog?.kind === 'withdraw' && <WithdrawDialog group={detail.group} label={dialog.label} onClose={close} onDone={done} onError={onError} />}
    </>
  );
}

function AllowedSet({ set, pcrs, canWithdraw, onWithdraw }: { set: PolicyValueSet; pcrs: readonly number[]; canWithdraw: boolean; onWithdraw: () => void }) {
  const origin = set.promotedFrom;
  return (
    <div class="allowed-set">
      <table class="pcrs">
        <caption>
          Set “{set.label}”{origin === undefined ? ', approved from stated values' : `, promoted from ${origin.machine}'s quote of ${instant(origin.at)}`}
        </caption>
        <thead>
          <tr>
            <th scope="col">PCR</th>
            <th scope="col">Value</th>
          </tr>
        </thead>
        <tbody>
          {pcrs.map((pcr) => (
            <tr key={pcr}>
              <th scope="row">{pcr}</th>
              <td>
                <code class="digest">{set.values[String(pcr)]}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {canWithdraw && (
        <button type="button" onClick={onWithdraw} aria-label={`Withdraw set ${set.label}…`}>
          Withdraw…
        </button>
      )}
    </div>
  );
}

function FailingMachines({ detail, canWrite, onPromote }: { detail: GroupDetail; canWrite: boolean; onPromote: (serial: string) => void }) {
  const machines = detail.failingMachines;
  return (
    <section aria-labelledby="failing">
      <h2 id="failing">Failing machines</h2>
      {machines.length === 0 ? (
        <p>None: no machine of the group is quarantined or refused.</p>
      ) : (
        <table class="failing">
          <caption>
            {detail.failing} failing{machines.length < detail.failing ? `, the first ${machines.length} by serial` : ''}; their newest quote against the nearest allowed set
          </caption>
          <thead>
            <tr>
              <th scope="col">Serial</th>
              <th scope="col">State</th>
              <th scope="col">Last refusal</th>
              <th scope="col">Newest quote</th>
              <th scope="col">Differs from the nearest set in</th>
              {canWrite && <th scope="col">Action</th>}
            </tr>
          </thead>
          <tbody>
            {machines.map((m) => (
              <tr key={m.id}>
                <th scope="row">
                  <a href={href(`/machines/${segment(m.serial)}`)}>{m.serial}</a>
                </th>
                <td>
                  <StateLabel state={m.state} />
                </td>
                <td>{m.lastFailure === null ? '—' : `${m.lastFailure.code} (${instant(m.lastFailure.at)})`}</td>
                <td>{m.evidenceAt === null ? 'none yet' : `${instant(m.evidenceAt)} (${m.evidenceBank ?? ''})`}</td>
                <td>
                  {m.comparison === null
                    ? m.evidenceAt === null
                      ? 'no quote to compare'
                      : 'not comparable (no policy, or another bank)'
                    : m.comparison.differingPcrs.length === 0
                      ? `= matches set “${m.comparison.nearestSet}” (passes at its next attestation)`
                      : `≠ PCR ${m.comparison.differingPcrs.join(', ')} (set “${m.comparison.nearestSet}”)`}
                </td>
                {canWrite && (
                  <td>
                    {m.evidenceAt !== null && (
                      <button type="button" onClick={() => onPromote(m.serial)} aria-label={`Promote ${m.serial}…`}>
                        Promote…
                      </button>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function WithdrawDialog({ group, label, onClose, onDone, onError }: { group: string; label: string; onClose: () => void; onDone: (message: string) => void; onError: (error: unknown) => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  async function withdraw(): Promise<void> {
    setBusy(true);
    setError(undefined);
    try {
      const change = await api<PolicySetChange>('DELETE', `/v1/groups/${segment(group)}/policy/sets/${segment(label)}`);
      onDone(`Set “${label}” withdrawn; the group's approval epoch is now ${change.approvalEpoch}.`);
    } catch (caught) {
      setError(`Refused: ${(caught as Error).message}`);
      onError(caught);
    } finally {
      setBusy(false);
    }
  }
  return (
    <ConfirmDialog title={`Withdraw set “${label}”?`} confirmLabel="Withdraw" busy={busy} error={error} onClose={onClose} onConfirm={() => void withdraw()}>
      <p>
        Machines of group {group} booting this state are quarantined at their next attestation, and the group moves to a new approval epoch: envelopes sealed to the older one are
        re-wrapped. Recorded in the audit log.
      </p>
    </ConfirmDialog>
  );
}
