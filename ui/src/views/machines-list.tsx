import { MACHINE_STATES, type Machine } from '@rackseal/api-contracts';
import { useState } from 'preact/hooks';
import { api } from '../api';
import { instant } from '../format';
import { href } from '../router';
import { useApi } from '../use-api';
import { StateLabel } from './state-label';

/** Rows per page. */
const PAGE_SIZE = 50;

/** The machines table: filter by state and group, paged by serial (GET /v1/machines?after=<last serial>). */
export function MachinesList({ query, onError }: { query: URLSearchParams; onError: (error: unknown) => void }) {
  const state = query.get('state') ?? '';
  const group = query.get('group') ?? '';
  const after = query.get('after') ?? '';
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  for (const [key, value] of [['state', state], ['group', group], ['after', after]] as const) {
    if (value !== '') {
      params.set(key, value);
    }
  }
  const loaded = useApi(() => api<Machine[]>('GET', `/v1/machines?${params.toString()}`), params.toString(), onError);

  return (
    <>
      <h1>Machines</h1>
      <Filters key={`${state}\n${group}`} state={state} group={group} />
      {loaded.kind === 'loading' && <p>Loading…</p>}
      {loaded.kind === 'error' && <p role="alert" class="error">Could not load machines: {loaded.message}</p>}
      {loaded.kind === 'ok' && (
        <>
          <table class="machines">
            <caption>
              {loaded.value.length === 0 ? 'No machines match.' : `Machines ${after === '' ? 'from the first serial' : `after ${after}`}`}
              {state !== '' ? `, state ${state}` : ''}
              {group !== '' ? `, group ${group}` : ''}
            </caption>
            <thead>
              <tr>
                <th scope="col">Serial</th>
                <th scope="col">Hostname</th>
                <th scope="col">Group</th>
                <th scope="col">State</th>
                <th scope="col">Last attested</th>
                <th scope="col">Last failure</th>
              </tr>
            </thead>
            <tbody>
              {loaded.value.map((m) => (
                <tr key={m.id}>
                  <th scope="row">
                    <a href={href(`/machines/${encodeURIComponent(m.serial)}`)}>{m.serial}</a>
                  </th>
                  <td>{m.hostname ?? '—'}</td>
                  <td>{m.group ?? '—'}</td>
                  <td>
                    <StateLabel state={m.state} />
                  </td>
                  <td>{instant(m.lastAttestedAt)}</td>
                  <td>{m.lastFailure === null ? '—' : `${m.lastFailure.code} (${instant(m.lastFailure.at)})`}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <nav aria-label="Pages" class="pages">
            {after !== '' && <a href={href('/machines', { state, group })}>First page</a>}
            {loaded.value.length === PAGE_SIZE && <a href={href('/machines', { state, group, after: loaded.value[loaded.value.length - 1]?.serial })}>Next page</a>}
          </nav>
        </>
      )}
    </>
  );
}

/**
 * The filter form. Its fields are the user's until submitted (a reload of the table must not put
 * them back), and start again from the URL when it changes (the component is keyed by the filters).
 */
function Filters({ state, group }: { state: string; group: string }) {
  const [stateInput, setStateInput] = useState(state);
  const [groupInput, setGroupInput] = useState(group);

  function filter(event: Event): void {
    event.preventDefault();
    window.location.hash = href('/machines', { state: stateInput, group: groupInput.trim() }).slice(1);
  }

  return (
    <form class="filters" onSubmit={filter} aria-label="Filter machines">
      <label for="filter-state">State</label>
      <select id="filter-state" name="state" value={stateInput} onChange={(event) => setStateInput((event.target as HTMLSelectElement).value)}>
        <option value="">any</option>
        {MACHINE_STATES.map((s) => (
          <option key={s} value={s}>
            {s}
          </option>
        ))}
      </select>
      <label for="filter-group">Group</label>
      <input id="filter-group" name="group" value={groupInput} onInput={(event) => setGroupInput((event.target as HTMLInputElement).value)} />
      <button type="submit">Filter</button>
    </form>
  );
}
