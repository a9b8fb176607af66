import { type CertifiedKey, type DeliveryView, grants, type GroupPolicy, type MachineDetail, type MachineEvidence, type MachineReattestRequest } from '@rackseal/api-contracts';
import { useState } from 'preact/hooks';
import { api, ApiError, segment } from '../api';
import { instant } from '../format';
import { href } from '../router';
import { useApi } from '../use-api';
import { PcrComparison } from './pcr-comparison';
import { RuntimeVerdict } from './runtime-verdict';
import { StateLabel } from './state-label';

interface MachineData {
  readonly machine: MachineDetail;
  readonly evidence: MachineEvidence | null;
  readonly policy: GroupPolicy | null;
  readonly keys: readonly CertifiedKey[];
  /** Null when the session may not read deliveries (secrets:read). */
  readonly deliveries: readonly DeliveryView[] | null;
}

/** "Nothing yet" is an answer, not a failure: no policy for the group (404), no verified quote (policy.no-evidence). */
async function orNull<T>(load: Promise<T>): Promise<T | null> {
  try {
    return await load;
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.code === 'policy.no-evidence')) {
      return null;
    }
    throw error;
  }
}

async function loadMachine(serial: string, scopes: readonly string[]): Promise<MachineData> {
  const ref = segment(serial);
  const machine = await api<MachineDetail>('GET', `/v1/machines/${ref}`);
  const [evidence, policy, keys, deliveries] = await Promise.all([
    orNull(api<MachineEvidence>('GET', `/v1/machines/${ref}/evidence`)),
    machine.group !== null && grants(scopes, 'policy:read') ? orNull(api<GroupPolicy>('GET', `/v1/groups/${segment(machine.group)}/policy`)) : Promise.resolve(null),
    api<CertifiedKey[]>('GET', `/v1/machines/${ref}/keys`),
    grants(scopes, 'secrets:read') ? api<DeliveryView[]>('GET', `/v1/deliveries?machine=${ref}&limit=100`) : Promise.resolve(null),
  ]);
  return { machine, evidence, policy, keys, deliveries };
}

interface TimelineEntry {
  readonly at: string;
  readonly what: string;
  readonly detail: string;
}

/** Imported, each state change, the attestations on record, deliveries and acks: oldest first. */
function timelineOf({ machine, deliveries }: MachineData): TimelineEntry[] {
  const entries: TimelineEntry[] = [{ at: machine.importedAt, what: 'imported', detail: machine.importId === null ? '' : `import ${machine.importId}` }];
  for (const t of machine.history) {
    entries.push({ at: t.at, what: `${t.from} → ${t.to}`, detail: `${t.reason} (by ${t.actor})` });
  }
  if (machine.firstAttestedAt !== null) {
    entries.push({ at: machine.firstAttestedAt, what: 'first attestation', detail: '' });
  }
  if (machine.lastAttestedAt !== null && machine.lastAttestedAt !== machine.firstAttestedAt) {
    entries.push({ at: machine.lastAttestedAt, what: 'latest attestation', detail: '' });
  }
  if (machine.lastFailure !== null) {
    entries.push({ at: machine.lastFailure.at, what: 'attestation refused', detail: `${machine.lastFailure.code}: ${machine.lastFailure.reason}` });
  }
  for (const d of deliveries ?? []) {
    const name = `${d.secret.name} v${d.secret.version}`;
    entries.push({ at: d.createdAt, what: 'delivery planned', detail: name });
    if (d.readyAt !== null) {
      entries.push({ at: d.readyAt, what: 'delivery ready', detail: name });
    }
    if (d.ackedAt !== null) {
      entries.push({ at: d.ackedAt, what: 'delivery acked', detail: name });
    }
  }
  return entries.sort((a, b) => a.at.localeCompare(b.at));
}

/** One machine: state, why it failed, its PCRs against its group's allowed sets, timeline, keys, secrets. */
export function MachinePage({ serial, scopes, onError }: { serial: string; scopes: readonly string[]; onError: (error: unknown) => void }) {
  const loaded = useApi(() => loadMachine(serial, scopes), serial, onError);
  return (
    <>
      <p>
        <a href={href('/machines')}>← All machines</a>
      </p>
      <h1>Machine {serial}</h1>
      {loaded.kind === 'loading' && <p>Loading…</p>}
      {loaded.kind === 'error' && <p role="alert" class="error">Could not load machine {serial}: {loaded.message}</p>}
      {loaded.kind === 'ok' && <MachineBody data={loaded.value} scopes={scopes} onError={onError} />}
    </>
  );
}

function MachineBody({ data, scopes, onError }: { data: MachineData; scopes: readonly string[]; onError: (error: unknown) => void }) {
  const { machine, evidence, policy, keys, deliveries } = data;
  const failure = machine.lastFailure;
  const failing = failure !== null && (machine.lastAttestedAt === null || failure.at > machine.lastAttestedAt);
  return (
    <>
      <dl class="facts">
        <dt>State</dt>
        <dd>
          <StateLabel state={machine.state} />
        </dd>
        <dt>Hostname</dt>
        <dd>{machine.hostname ?? '—'}</dd>
        <dt>Group</dt>
        <dd>{machine.group === null ? '—' : grants(scopes, 'policy:read') ? <a href={href(`/groups/${segment(machine.group)}`)}>{machine.group}</a> : machine.group}</dd>
        <dt>Asset tag</dt>
        <dd>{machine.assetTag ?? '—'}</dd>
        <dt>EK public hash</dt>
        <dd>
          <code class="digest">{machine.ekPubHash}</code>
        </dd>
        <dt>Last attested</dt>
        <dd>{instant(machine.lastAttestedAt)}</dd>
      </dl>
      {grants(scopes, 'inventory:write') && machine.state !== 'revoked' && <ReattestControl serial={machine.serial} onError={onError} />}
      {failure !== null && (
        <section aria-labelledby="failure">
          <h2 id="failure">{failing ? 'Why its last attestation was refused' : 'Its last refused attestation (a later one succeeded)'}</h2>
          <p>
            <strong>{failure.code}</strong> at {instant(failure.at)}: {failure.reason}
          </p>
          {failure.explanation.length > 0 && (
            <>
              <h3 id="diverging">Diverging events</h3>
              <ul aria-labelledby="diverging" class="explanation">
                {failure.explanation.map((line) => (
                  <li key={line}>{line}</li>
                ))}
              </ul>
            </>
          )}
        </section>
      )}
      <section aria-labelledby="pcrs">
        <h2 id="pcrs">PCRs against the group's allowed sets</h2>
        {evidence === null ? <p>No verified quote yet.</p> : <PcrComparison evidence={evidence} policy={policy} />}
      </section>
      {evidence?.runtime !== undefined && (
        <section aria-labelledby="runtime">
          <h2 id="runtime">Runtime integrity (IMA)</h2>
          <RuntimeVerdict verdict={evidence.runtime} />
        </section>
      )}
      <section aria-labelledby="timeline">
        <h2 id="timeline">Timeline</h2>
        <table>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">What</th>
              <th scope="col">Details</th>
            </tr>
          </thead>
          <tbody>
            {timelineOf(data).map((e, i) => (
              <tr key={i}>
                <td class="when">{instant(e.at)}</td>
                <td>{e.what}</td>
                <td>{e.detail}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section aria-labelledby="keys">
        <h2 id="keys">Certified keys</h2>
        {keys.length === 0 ? (
          <p>None.</p>
        ) : (
          <ul>
            {keys.map((k) => (
              <li key={k.id}>
                {k.algorithm}, certified {instant(k.certifiedAt)}, {k.retiredAt === null ? 'live' : `retired ${instant(k.retiredAt)}`}: <code class="digest">{k.name}</code>
              </li>
            ))}
          </ul>
        )}
      </section>
      <section aria-labelledby="secrets">
        <h2 id="secrets">Secrets delivered</h2>
        {deliveries === null ? (
          <p>Needs the secrets:read scope.</p>
        ) : deliveries.length === 0 ? (
          <p>None.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Secret</th>
                <th scope="col">Version</th>
                <th scope="col">Delivery</th>
                <th scope="col">Acked</th>
              </tr>
            </thead>
            <tbody>
              {deliveries.map((d) => (
                <tr key={d.id}>
                  <td>{d.secret.name}</td>
                  <td>{d.secret.version}</td>
                  <td>
                    {d.state}
                    {d.lastError !== null ? ` (${d.lastError})` : ''}
                  </td>
                  <td>{instant(d.ackedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}

/** Asks the machine to attest again now (inventory:write), after the operator confirms. */
function ReattestControl({ serial, onError }: { serial: string; onError: (error: unknown) => void }) {
  const [message, setMessage] = useState<string | undefined>();
  async function request(): Promise<void> {
    if (!window.confirm(`Ask machine ${serial} to attest again now? This is recorded in the audit log.`)) {
      return;
    }
    try {
      const answer = await api<MachineReattestRequest>('POST', `/v1/machines/${segment(serial)}/reattest`);
      setMessage(`Re-attestation requested at ${instant(answer.requestedAt)}.`);
    } catch (error) {
      setMessage(`Refused: ${(error as Error).message}`);
      onError(error);
    }
  }
  return (
    <p>
      <button type="button" onClick={() => void request()}>
        Ask to re-attest now
      </button>
      {message !== undefined && <span role="status"> {message}</span>}
    </p>
  );
}
