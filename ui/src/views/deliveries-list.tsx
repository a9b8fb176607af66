import { DELIVERY_STATES, type DeliveryView, grants } from '@rackseal/api-contracts';
import { useState } from 'preact/hooks';
import { api } from '../api';
import { instant } from '../format';
import { href } from '../router';
import { useApi } from '../use-api';
import { ConfirmDialog } from './modal';

/** Rows per page. */
const PAGE_SIZE = 50;

/**
 * Deliveries by state and secret, the failed ones (the dead letter) first of all: each with its
 * error code, attempts and machine, and (secrets:write) a retry — POST /v1/deliveries/:id/retry,
 * audited `delivery.retried` as from the API — behind a confirmation. Never an envelope.
 */
export function DeliveriesList({ query, scopes, onError }: { query: URLSearchParams; scopes: readonly string[]; onError: (error: unknown) => void }) {
  const state = query.get('state') ?? '';
  const secret = query.get('secret') ?? '';
  const after = query.get('after') ?? '';
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  for (const [key, value] of [['state', state], ['secret', secret], ['after', after]] as const) {
    if (value !== '') {
      params.set(key, value);
    }
  }
  // Bumped after a retry: the list is read again.
  const [reads, setReads] = useState(0);
  const [notice, setNotice] = useState('');
  const [retrying, setRetrying] = useState<DeliveryView | undefined>();
  const loaded = useApi(() => api<DeliveryView[]>('GET', `/v1/deliveries?${params.toString()}`), `${params.toString()}\n${reads}`, onError);
  const mayRetry = grants(scopes, 'secrets:write');

  async function retry(delivery: DeliveryView): Promise<void> {
    try {
      const answer = await api<DeliveryView>('POST', `/v1/deliveries/${encodeURIComponent(delivery.id)}/retry`);
      setNotice(`Delivery of ${answer.secret.name} version ${answer.secret.version} to ${answer.machine.serial} is ${answer.state} again (round ${answer.generation}).`);
    } catch (error) {
      setNotice(`Refused: ${(error as Error).message}`);
      onError(error);
    }
    setReads((n) => n + 1);
  }

  return (
    <>
      <p>
        <a href={href('/secrets')}>← All secrets</a>
      </p>
      <h1>{state === 'failed' ? 'Failed deliveries' : 'Deliveries'}</h1>
      <p class="help">A failed delivery is the dead letter: its last attempt failed, or it failed in a way no attempt can fix. A retry plans it again in a new round.</p>
      <Filters key={`${state}\n${secret}`} state={state} secret={secret} />
      <p role="status">{notice}</p>
      {loaded.kind === 'loading' && <p>Loading…</p>}
      {loaded.kind === 'error' && <p role="alert" class="error">Could not load the deliveries: {loaded.message}</p>}
      {loaded.kind === 'ok' && (
        <>
          <table class="deliveries">
            <caption>
              {loaded.value.length === 0 ? 'No deliveries match' : 'Deliveries'}
              {state !== '' ? `, state ${state}` : ''}
              {secret !== '' ? `, secret ${secret}` : ''}
            </caption>
            <thead>
              <tr>
                <th scope="col">Secret</th>
                <th scope="col">Version</th>
                <th scope="col">Machine</th>
                <th scope="col">State</th>
                <th scope="col">Error</th>
                <th scope="col" class="num">Attempts</th>
                <th scope="col" class="num">Round</th>
                <th scope="col">Created</th>
                {mayRetry && <th scope="col">Action</th>}
              </tr>
            </thead>
            <tbody>
              {loaded.value.map((d) => (
                <tr key={d.id}>
                  <th scope="row">
                    <a href={href(`/secrets/${encodeURIComponent(d.secret.name)}`)}>{d.secret.name}</a>
                  </th>
                  <td class="num">{d.secret.version}</td>
                  <td>
                    <a href={href(`/machines/${encodeURIComponent(d.machine.serial)}`)}>{d.machine.serial}</a>
                  </td>
                  <td>{d.state === 'failed' ? '✕ failed' : d.state}</td>
                  <td>{d.lastError === null ? '—' : <code>{d.lastError}</code>}</td>
                  <td class="num">{d.attempts}</td>
                  <td class="num">{d.generation}</td>
                  <td class="when">{instant(d.createdAt)}</td>
                  {mayRetry && (
                    <td>
                      {d.state === 'failed' && (
                        <button type="button" aria-label={`Retry delivery of ${d.secret.name} version ${d.secret.version} to ${d.machine.serial}`} onClick={() => setRetrying(d)}>
                          Retry
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
          <nav aria-label="Pages" class="pages">
            {after !== '' && <a href={href('/deliveries', { state, secret })}>First page</a>}
            {loaded.value.length === PAGE_SIZE && <a href={href('/deliveries', { state, secret, after: loaded.value[loaded.value.length - 1]?.id })}>Next page</a>}
          </nav>
        </>
      )}
      {retrying !== undefined && (
        <ConfirmDialog title="Retry this delivery?" confirmLabel="Retry" onConfirm={() => {
            setRetrying(undefined);
            void retry(retrying);
          }}
          onClose={() => setRetrying(undefined)}>
          <p>
            {retrying.secret.name} version {retrying.secret.version} to machine {retrying.machine.serial} failed with <code>{retrying.lastError ?? 'no code'}</code> after {retrying.attempts} attempt(s). A retry
            makes it pending again in round {retrying.generation + 1}, and a worker delivers it. This is recorded in the audit log.
          </p>
        </ConfirmDialog>
      )}
    </>
  );
}

/** The filter form: state and secret (its fields are the user's until submitted, as for the machines). */
function Filters({ state, secret }: { state: string; secret: string }) {
  const [stateInput, setStateInput] = useState(state);
  const [secretInput, setSecretInput] = useState(secret);
  function filter(event: Event): void {
    event.preventDefault();
    window.location.hash = href('/deliveries', { state: stateInput, secret: secretInput.trim() }).slice(1);
  }
  return (
    <form class="filters" onSubmit={filter} aria-label="Filter deliveries">
      <label for="filter-delivery-state">State</label>
      <select id="filter-delivery-state" name="state" value={stateInput} onChange={(event) => setStateInput((event.target as HTMLSelectElement).value)}>
        <option value="">any</option>
        {DELIVERY_STATES.map((s) => (
          <option key={s} value={s}>
            {s}
          </option>
        ))}
      </select>
      <label for="filter-secret">Secret</label>
      <input id="filter-secret" name="secret" value={secretInput} onInput={(event) => setSecretInput((event.target as HTMLInputElement).value)} />
      <button type="submit">Filter</button>
    </form>
  );
}
