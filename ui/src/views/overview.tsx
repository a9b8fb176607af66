import { DELIVERY_STATES, type FleetOverview, MACHINE_STATES } from '@rackseal/api-contracts';
import { api } from '../api';
import { duration, instant } from '../format';
import { href } from '../router';
import { useApi } from '../use-api';
import { StateLabel } from './state-label';

/** How often the overview reloads. */
const POLL_MS = 10_000;

/** Fleet overview: machines by state, overdue, recent refusals by reason, deliveries by state, the audit sequencer. */
export function Overview({ onError }: { onError: (error: unknown) => void }) {
  const loaded = useApi(() => api<FleetOverview>('GET', '/v1/fleet/overview'), 'overview', onError, POLL_MS);
  return (
    <>
      <h1>Fleet overview</h1>
      {loaded.kind === 'loading' && <p>Loading…</p>}
      {loaded.kind === 'error' && <p role="alert" class="error">Could not load the overview: {loaded.message}</p>}
      {loaded.kind === 'ok' && <OverviewBody overview={loaded.value} />}
      <p class="help" aria-live="polite">
        {loaded.kind === 'ok' ? `As of ${instant(loaded.value.at)}; refreshed every ${POLL_MS / 1000} s.` : ''}
      </p>
    </>
  );
}

function OverviewBody({ overview }: { overview: FleetOverview }) {
  const machines = MACHINE_STATES.reduce((sum, state) => sum + overview.machinesByState[state], 0);
  const { audit } = overview;
  return (
    <div class="cards">
      <section aria-labelledby="machines-by-state">
        <h2 id="machines-by-state">Machines by state</h2>
        <table>
          <caption>{machines} machines</caption>
          <thead>
            <tr>
              <th scope="col">State</th>
              <th scope="col" class="num">Machines</th>
            </tr>
          </thead>
          <tbody>
            {MACHINE_STATES.map((state) => (
              <tr key={state}>
                <th scope="row">
                  <a href={href('/machines', { state })}>
                    <StateLabel state={state} />
                  </a>
                </th>
                <td class="num">{overview.machinesByState[state]}</td>
              </tr>
            ))}
          </tbody>
        </table>
        <p>
          <strong class={overview.overdue > 0 ? 'warn' : undefined}>{overview.overdue}</strong> not attested within their group's interval
          {overview.overdue > 0 ? ' (overdue)' : ''}.
        </p>
      </section>
      <section aria-labelledby="refusals">
        <h2 id="refusals">Refusals, last {Math.round(overview.refusals.windowSeconds / 3600)} h</h2>
        {overview.refusals.byReason.length === 0 ? (
          <p>None among the newest {overview.refusals.scannedRecords} audit records.</p>
        ) : (
          <table>
            <caption>By action and reason, among the newest {overview.refusals.scannedRecords} audit records</caption>
            <thead>
              <tr>
                <th scope="col">Action</th>
                <th scope="col">Reason</th>
                <th scope="col" class="num">Count</th>
              </tr>
            </thead>
            <tbody>
              {overview.refusals.byReason.map((r) => (
                <tr key={`${r.action} ${r.code ?? ''}`}>
                  <td>{r.action}</td>
                  <td>{r.code ?? '(none given)'}</td>
                  <td class="num">{r.count}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section aria-labelledby="deliveries">
        <h2 id="deliveries">Deliveries by state</h2>
        <table>
          <thead>
            <tr>
              <th scope="col">State</th>
              <th scope="col" class="num">Deliveries</th>
            </tr>
          </thead>
          <tbody>
            {DELIVERY_STATES.map((state) => (
              <tr key={state}>
                <th scope="row">{state}</th>
                <td class="num">{overview.deliveriesByState[state]}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section aria-labelledby="audit">
        <h2 id="audit">Audit log</h2>
        <dl>
          <dt>Records in the tree</dt>
          <dd>{audit.treeSize}</dd>
          <dt>Waiting to be sequenced</dt>
          <dd>
            {audit.pending}
            {audit.pending > 0 ? ` (oldest waiting ${duration(audit.oldestPendingAgeMs)})` : ''}
          </dd>
          <dt>Sequenced, not yet signed</dt>
          <dd>{audit.unsigned}</dd>
          <dt>Latest signed checkpoint</dt>
          <dd>{audit.latestCheckpoint === null ? 'none yet' : `${audit.latestCheckpoint.treeSize} records, signed ${instant(audit.latestCheckpoint.signedAt)}`}</dd>
        </dl>
      </section>
    </div>
  );
}
