import { grants, type RotateSecretRequest, type SecretVersionDetail, type SecretView, type VersionDeliveryProgress } from '@rackseal/api-contracts';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, segment } from '../api';
import { instant } from '../format';
import { href } from '../router';
import { useApi } from '../use-api';
import { ConfirmDialog } from './modal';
import { progressPath, RolloutProgress, useLiveProgress } from './rollout-progress';
import { nextRotationOf, scheduleOf, targetOf } from './rotation-schedule';

/** Versions whose rollout the page counts (newest first); older ones are listed without it. */
const COUNTED_VERSIONS = 10;

interface SecretData {
  readonly secret: SecretView;
  readonly versions: readonly SecretVersionDetail[];
  /** By version, for the newest COUNTED_VERSIONS. */
  readonly progress: ReadonlyMap<number, VersionDeliveryProgress>;
}

async function loadSecret(name: string): Promise<SecretData> {
  const ref = segment(name);
  const [secret, versions] = await Promise.all([api<SecretView>('GET', `/v1/secrets/${ref}`), api<SecretVersionDetail[]>('GET', `/v1/secrets/${ref}/versions`)]);
  const counted = await Promise.all(versions.slice(0, COUNTED_VERSIONS).map((v) => api<VersionDeliveryProgress>('GET', progressPath(name, v.version))));
  return { secret, versions, progress: new Map(counted.map((p) => [p.version, p])) };
}

/** One secret: its definition and schedule, its versions with their machines and rollouts, and (secrets:write) a rotation watched live. */
export function SecretPage({ name, scopes, onError }: { name: string; scopes: readonly string[]; onError: (error: unknown) => void }) {
  // Bumped when a rotation starts or settles: the versions table is read again.
  const [reads, setReads] = useState(0);
  const loaded = useApi(() => loadSecret(name), `${name}\n${reads}`, onError);
  // While it is read again, the page keeps showing what it had (no flicker, no rollout restarted).
  const last = useRef<SecretData | undefined>();
  if (loaded.kind === 'ok') {
    last.current = loaded.value;
  }
  const data = last.current;
  // The version watched live: the latest one, or the one a rotation just made.
  const [rotated, setRotated] = useState<number | undefined>();
  // What the last rotation request came to; kept here so the reads after it do not wipe it.
  const [notice, setNotice] = useState('');
  const latest = data?.secret.latestVersion.version;
  const watched = Math.max(rotated ?? 0, latest ?? 0);
  return (
    <>
      <p>
        <a href={href('/secrets')}>← All secrets</a>
      </p>
      <h1>Secret {name}</h1>
      {loaded.kind === 'error' && <p role="alert" class="error">Could not load secret {name}: {loaded.message}</p>}
      {data === undefined && loaded.kind === 'loading' && <p>Loading…</p>}
      {data !== undefined && <SecretFacts data={data} />}
      {data !== undefined && grants(scopes, 'secrets:write') && (
        <RotateControl
          secret={data.secret}
          onRotated={(version) => {
            setNotice(`Version ${version} created; its rollout is watched below.`);
            setRotated(version);
            setReads((n) => n + 1);
          }}
          onRefused={(error) => {
            setNotice(`Refused: ${(error as Error).message}`);
            onError(error);
          }}
        />
      )}
      <p role="status">{notice}</p>
      {watched > 0 && <CurrentRollout key={watched} name={name} version={watched} startedHere={watched === rotated} onSettled={() => setReads((n) => n + 1)} onError={onError} />}
      {data !== undefined && <VersionsTable data={data} />}
    </>
  );
}

function SecretFacts({ data }: { data: SecretData }) {
  const { secret } = data;
  const next = nextRotationOf(secret, data.versions[0]);
  return (
    <>
      <dl class="facts">
        <dt>Kind</dt>
        <dd>{secret.kind}</dd>
        <dt>Target</dt>
        <dd>{targetOf(secret)}</dd>
        <dt>Binding</dt>
        <dd>{secret.binding}</dd>
        <dt>Current version</dt>
        <dd>{secret.latestVersion.version}</dd>
        <dt>Schedule</dt>
        <dd>{scheduleOf(secret)}</dd>
        <dt>Next rotation</dt>
        <dd>{next === null ? 'none scheduled' : `${next.estimate ? '≈ ' : ''}${instant(next.at.toISOString())}`}</dd>
        <dt>Created</dt>
        <dd>
          {instant(secret.createdAt)} by {secret.createdBy}
        </dd>
      </dl>
      {secret.rotationRequired !== null && (
        <p role="alert" class="warn">
          ⚠ Rotation required since {instant(secret.rotationRequired.since)}: {secret.rotationRequired.reason}. Upload a new value with <code>rackseal secrets rotate {secret.name} --value-file FILE</code>.
        </p>
      )}
      <p>
        <a href={href('/deliveries', { state: 'failed', secret: secret.name })}>Failed deliveries of {secret.name}</a>
      </p>
    </>
  );
}

/** Starts a rotation (POST /v1/secrets/:name/versions, as `rackseal secrets rotate NAME --group G`) after the operator confirms. */
function RotateControl({ secret, onRotated, onRefused }: { secret: SecretView; onRotated: (version: number) => void; onRefused: (error: unknown) => void }) {
  const [asking, setAsking] = useState(false);
  const next = secret.latestVersion.version + 1;
  async function rotate(): Promise<void> {
    // The group the page shows, sent as the CLI's --group: refused if the secret's target changed under the page.
    // And the version it shows: of two operators confirming at once, one rotates and the other is told (409).
    const body: RotateSecretRequest = { ...(secret.target.group === null ? {} : { group: secret.target.group }), fromVersion: secret.latestVersion.version };
    try {
      const answer = await api<SecretView>('POST', `/v1/secrets/${segment(secret.name)}/versions`, body);
      onRotated(answer.latestVersion.version);
    } catch (error) {
      onRefused(error);
    }
  }
  return (
    <div class="controls">
      <button type="button" onClick={() => setAsking(true)}>
        Start a rotation
      </button>
      {asking && (
        <ConfirmDialog title={`Rotate ${secret.name}?`} confirmLabel={`Rotate to version ${next}`} onConfirm={() => {
            setAsking(false);
            void rotate();
          }}
          onClose={() => setAsking(false)}>
          <p>
            Version {next} of {secret.name} ({secret.kind}) gets fresh material for every attested machine of its target, {targetOf(secret)}, and each of them receives it. Once every target
            acked it, the older versions are retired. This is recorded in the audit log.
          </p>
          {secret.kind === 'opaque' && <p>The new value is generated by the server. To upload your own, use <code>rackseal secrets rotate {secret.name} --value-file FILE</code>.</p>}
        </ConfirmDialog>
      )}
    </div>
  );
}

/** The watched version's rollout, read every second until settled (and not once the page is left). */
function CurrentRollout({ name, version, startedHere, onSettled, onError }: { name: string; version: number; startedHere: boolean; onSettled: () => void; onError: (error: unknown) => void }) {
  const live = useLiveProgress(name, version, onError);
  // Told once, when a rollout started here or seen unsettled settles (not when the page opens on a settled one).
  const sawUnsettled = useRef(startedHere);
  const settled = live.kind === 'ok' && !live.watching;
  if (live.kind === 'ok' && live.watching) {
    sawUnsettled.current = true;
  }
  useEffect(() => {
    if (settled && sawUnsettled.current) {
      onSettled();
    }
  }, [settled]);
  return (
    <section aria-labelledby="rollout">
      <h2 id="rollout">Rollout of version {version}</h2>
      <div aria-live="polite">
        {live.kind === 'loading' && <p>Loading…</p>}
        {live.kind === 'error' && <p role="alert" class="error">Could not read the rollout: {live.message}</p>}
        {live.kind === 'ok' && (
          <>
            <p>
              <RolloutProgress progress={live.progress} />
            </p>
            <p class="help">
              {live.watching
                ? 'Watching: read again every second until every target acked.'
                : live.progress.states.failed > 0
                  ? `Settled: ${live.progress.states.failed} delivery(ies) failed; retry them from the failed deliveries.`
                  : 'Settled: every target acked.'}
            </p>
          </>
        )}
      </div>
    </section>
  );
}

function VersionsTable({ data }: { data: SecretData }) {
  const { versions, progress } = data;
  return (
    <section aria-labelledby="versions">
      <h2 id="versions">Versions</h2>
      <table>
        <caption>{versions.length} version(s), newest first; the rollout is counted for the newest {COUNTED_VERSIONS}</caption>
        <thead>
          <tr>
            <th scope="col">Version</th>
            <th scope="col">Created</th>
            <th scope="col">Retired</th>
            <th scope="col">Deliveries</th>
            <th scope="col">Machines holding its material</th>
          </tr>
        </thead>
        <tbody>
          {versions.map((v) => {
            const p = progress.get(v.version);
            return (
              <tr key={v.version}>
                <th scope="row">{v.version}</th>
                <td>
                  {instant(v.createdAt)} by {v.createdBy}
                </td>
                <td>{v.retiredAt === null ? 'live' : instant(v.retiredAt)}</td>
                <td>{p === undefined ? '—' : <RolloutProgress progress={p} />}</td>
                <td>
                  <Materials version={v} />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </section>
  );
}

/** The machines holding a version's material (certificate serial and end for certificate kinds); never the material. */
function Materials({ version }: { version: SecretVersionDetail }) {
  if (version.materials.length === 0) {
    return <>none (one value for the whole target)</>;
  }
  return (
    <details>
      <summary>{version.materials.length} machine(s)</summary>
      <ul>
        {version.materials.map((m) => (
          <li key={m.machineId}>
            <a href={href(`/machines/${encodeURIComponent(m.serial)}`)}>{m.serial}</a>
            {m.certificateSerial !== null && (
              <>
                {' '}
                certificate <code>{m.certificateSerial}</code>, ends {instant(m.notAfter)}
              </>
            )}
          </li>
        ))}
      </ul>
    </details>
  );
}
