import type { VersionDeliveryProgress } from '@rackseal/api-contracts';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, segment } from '../api';

/** The states a rollout is counted in (the pre-wrap states belong to provisioning, not to a rotation). */
export const ROLLOUT_STATES = ['pending', 'ready', 'acked', 'failed', 'cancelled', 'expired'] as const;

export const progressPath = (name: string, version: number): string => `/v1/secrets/${segment(name)}/versions/${version}/deliveries`;

/** "12 of 20 acked": the rollout in words, so it never rests on the bar or on colour. */
export function ackedText(progress: VersionDeliveryProgress): string {
  return `${progress.states.acked} of ${progress.total} acked`;
}

/** A version's rollout: a <progress> named by its text, and every state's count. */
export function RolloutProgress({ progress }: { progress: VersionDeliveryProgress }) {
  const text = ackedText(progress);
  return (
    <span class="rollout">
      <progress max={Math.max(progress.total, 1)} value={progress.states.acked} aria-label={`Version ${progress.version}: ${text}`} />{' '}
      <strong>{text}</strong>
      <span class="counts">
        {' '}
        ({ROLLOUT_STATES.map((s) => `${s} ${progress.states[s]}`).join(' · ')})
      </span>
    </span>
  );
}

export type LiveProgress = { readonly kind: 'loading' } | { readonly kind: 'ok'; readonly progress: VersionDeliveryProgress; readonly watching: boolean } | { readonly kind: 'error'; readonly message: string };

/**
 * Watches a version's rollout: asks the progress route every `everyMs` until it is settled (nothing
 * pending or ready: every target acked, or the rest failed) or the view is left, as `rackseal secrets
 * rotate` waits on the same route. A refusal (4xx: signed out, no scope, the secret gone) ends the
 * watch; an outage (no answer, 5xx) is shown and asked again, as the rollout goes on without us.
 */
export function useLiveProgress(name: string, version: number, onError: (error: unknown) => void, everyMs = 1000): LiveProgress {
  const [state, setState] = useState<{ key: string; live: LiveProgress }>({ key: '', live: { kind: 'loading' } });
  const key = `${name}\n${version}`;
  useEffect(() => {
    let shown = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = (): void => {
      api<VersionDeliveryProgress>('GET', progressPath(name, version))
        .then((progress) => {
          if (shown) {
            setState({ key, live: { kind: 'ok', progress, watching: !progress.settled } });
            if (!progress.settled) {
              timer = setTimeout(run, everyMs);
            }
          }
        })
        .catch((error: unknown) => {
          if (shown) {
            setState({ key, live: { kind: 'error', message: (error as Error).message } });
            onError(error);
            if (!(error instanceof ApiError && error.status < 500)) {
              timer = setTimeout(run, everyMs);
            }
          }
        });
    };
    run();
    return () => {
      shown = false;
      clearTimeout(timer);
    };
    // `onError` is the app's one callback; `key` names what is watched.
  }, [key]);
  return state.key === key ? state.live : { kind: 'loading' };
}
