import type { SecretView, VersionDeliveryProgress } from '@rackseal/api-contracts';
import { api, ApiError } from '../api';
import { instant } from '../format';
import { href } from '../router';
import { useApi } from '../use-api';
import { ackedText, progressPath } from './rollout-progress';
import { nextRotationOf, scheduleOf, targetOf } from './rotation-schedule';

/** Rows per page: each row asks two small progress answers besides the page itself. */
const PAGE_SIZE = 25;

interface SecretRow {
  readonly secret: SecretView;
  /** The current version's rollout. */
  readonly current: VersionDeliveryProgress;
  /** The version before it, when there is one: retired once every delivery of the current one was acked. */
  readonly previous: VersionDeliveryProgress | null;
}

/** A version's progress, null when the version is gone from under the list (a 404 between the page and this call). */
async function progressOrNull(name: string, version: number): Promise<VersionDeliveryProgress | null> {
  try {
    return await api<VersionDeliveryProgress>('GET', progressPath(name, version));
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      return null;
    }
    throw error;
  }
}

interface SecretsPage {
  readonly rows: readonly SecretRow[];
  /** The page's last name when it was full (there may be more), for the next page's `after`. */
  readonly nextAfter: string | undefined;
}

async function loadSecrets(query: string): Promise<SecretsPage> {
  const page = await api<SecretView[]>('GET', `/v1/secrets?${query}`);
  const rows = await Promise.all(
    page.map(async (secret) => {
      const version = secret.latestVersion.version;
      const [current, previous] = await Promise.all([progressOrNull(secret.name, version), version > 1 ? progressOrNull(secret.name, version - 1) : Promise.resolve(null)]);
      return current === null ? undefined : { secret, current, previous };
    }),
  );
  return { rows: rows.filter((r): r is SecretRow => r !== undefined), nextAfter: page.length === PAGE_SIZE ? page[page.length - 1]?.name : undefined };
}

/**
 * Which versions are retired, from the version before the current one: a version is retired when
 * every delivery of a newer one was acked, and that retires every older version at once
 * (libs/deliveries VersionRetirement), so the previous version retired means all of them are.
 */
function retiredText({ secret, previous }: SecretRow): string {
  const version = secret.latestVersion.version;
  if (version === 1 || previous === null) {
    return 'none (first version)';
  }
  if (previous.retiredAt !== null) {
    return version === 2 ? 'version 1' : `versions 1–${version - 1}`;
  }
  return `version ${version - 1} still live until version ${version} is acked everywhere`;
}

/** The secrets: what each is, its target, its current version and rollout, its schedule, and which versions are retired. */
export function SecretsList({ query, onError }: { query: URLSearchParams; onError: (error: unknown) => void }) {
  const after = query.get('after') ?? '';
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (after !== '') {
    params.set('after', after);
  }
  const loaded = useApi(() => loadSecrets(params.toString()), params.toString(), onError);
  return (
    <>
      <h1>Secrets and rotations</h1>
      <p>
        <a href={href('/deliveries', { state: 'failed' })}>Failed deliveries (the dead letter)</a>
      </p>
      {loaded.kind === 'loading' && <p>Loading…</p>}
      {loaded.kind === 'error' && <p role="alert" class="error">Could not load the secrets: {loaded.message}</p>}
      {loaded.kind === 'ok' && (
        <>
          <table class="secrets">
            <caption>{loaded.value.rows.length === 0 ? 'No secrets.' : `Secrets ${after === '' ? 'from the first name' : `after ${after}`} (metadata only: no material is ever shown)`}</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Kind</th>
                <th scope="col">Target</th>
                <th scope="col">Current version</th>
                <th scope="col">Its rollout</th>
                <th scope="col">Schedule</th>
                <th scope="col">Next rotation</th>
                <th scope="col">Retired versions</th>
              </tr>
            </thead>
            <tbody>
              {loaded.value.rows.map((row) => {
                const { secret } = row;
                const next = nextRotationOf(secret);
                return (
                  <tr key={secret.id}>
                    <th scope="row">
                      <a href={href(`/secrets/${encodeURIComponent(secret.name)}`)}>{secret.name}</a>
                    </th>
                    <td>{secret.kind}</td>
                    <td>{targetOf(secret)}</td>
                    <td class="num">
                      {secret.latestVersion.version}
                      {secret.rotationRequired !== null && <span class="warn"> ⚠ rotation required</span>}
                    </td>
                    <td>
                      {ackedText(row.current)}
                      {row.current.states.failed > 0 ? `, ${row.current.states.failed} failed` : ''}
                    </td>
                    <td>{scheduleOf(secret)}</td>
                    <td>{next === null ? '—' : `${next.estimate ? '≈ ' : ''}${instant(next.at.toISOString())}`}</td>
                    <td>{retiredText(row)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          <nav aria-label="Pages" class="pages">
            {after !== '' && <a href={href('/secrets')}>First page</a>}
            {loaded.value.nextAfter !== undefined && <a href={href('/secrets', { after: loaded.value.nextAfter })}>Next page</a>}
          </nav>
        </>
      )}
    </>
  );
}
