import { type GroupSummary, MACHINE_STATES } from '@rackseal/api-contracts';
import { api, segment } from '../api';
import { duration } from '../format';
import { href } from '../router';
import { useApi } from '../use-api';
import { StateLabel } from './state-label';

/** Every machine group: its machines per state, failing, its PCR policy's mode and sets, its attestation interval. */
export function GroupsList({ onError }: { onError: (error: unknown) => void }) {
  const loaded = useApi(() => api<GroupSummary[]>('GET', '/v1/groups'), 'groups', onError);
  return (
    <>
      <h1>Groups and policies</h1>
      {loaded.kind === 'loading' && <p>Loading…</p>}
      {loaded.kind === 'error' && <p role="alert" class="error">Could not load the groups: {loaded.message}</p>}
      {loaded.kind === 'ok' && <GroupsTable groups={loaded.value} />}
    </>
  );
}

function GroupsTable({ groups }: { groups: readonly GroupSummary[] }) {
  if (groups.length === 0) {
    return <p>No groups yet: import machines with a group, or set a policy.</p>;
  }
  return (
    <table class="groups">
      <caption>{groups.length === 1 ? '1 group' : `${groups.length} groups`}, machines per state</caption>
      <thead>
        <tr>
          <th scope="col">Group</th>
          {MACHINE_STATES.map((state) => (
            <th scope="col" class="num" key={state}>
              <StateLabel state={state} />
            </th>
          ))}
          <th scope="col" class="num">
            Failing
          </th>
          <th scope="col">Policy</th>
          <th scope="col">Attestation interval</th>
        </tr>
      </thead>
      <tbody>
        {groups.map((g) => (
          <tr key={g.group}>
            <th scope="row">
              <a href={href(`/groups/${segment(g.group)}`)}>{g.group}</a>
            </th>
            {MACHINE_STATES.map((state) => (
              <td class="num" key={state}>
                {g.machinesByState[state]}
              </td>
            ))}
            <td class="num">
              <strong class={g.failing > 0 ? 'warn' : undefined}>{g.failing}</strong>
            </td>
            <td>{g.policy === null ? <span class="warn">⚠ no policy</span> : `${g.policy.mode}, ${g.policy.allowedSets} set${g.policy.allowedSets === 1 ? '' : 's'}`}</td>
            <td>
              {duration(g.attestationIntervalSeconds * 1000)}
              {g.intervalSource === 'fleet-default' ? ' (fleet default)' : ''}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
