import { useEffect, useState } from 'preact/hooks';

export type Loaded<T> = { readonly kind: 'loading' } | { readonly kind: 'ok'; readonly value: T; readonly at: Date } | { readonly kind: 'error'; readonly message: string };

/**
 * Loads `load()` when `key` changes and, with `pollMs`, again every pollMs while the view is shown
 * (the overview's "live"): polling rather than server-sent events, so every load-balanced replica
 * serves it with no connection state. Errors go to `onError` too (a 401 signs the dashboard out).
 */
export function useApi<T>(load: () => Promise<T>, key: string, onError: (error: unknown) => void, pollMs?: number): Loaded<T> {
  // Kept with the key it was loaded for: on a new key the old answer is never shown under the new view.
  const [state, setState] = useState<{ key: string; loaded: Loaded<T> }>({ key, loaded: { kind: 'loading' } });
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = (): void => {
      load()
        .then((value) => live && setState({ key, loaded: { kind: 'ok', value, at: new Date() } }))
        .catch((error: unknown) => {
          if (live) {
            setState({ key, loaded: { kind: 'error', message: (error as Error).message } });
            onError(error);
          }
        })
        .finally(() => {
          if (live && pollMs !== undefined) {
            timer = setTimeout(run, pollMs);
          }
        });
    };
    run();
    return () => {
      live = false;
      clearTimeout(timer);
    };
    // `load` changes identity each render; `key` names what it loads.
  }, [key]);
  return state.key === key ? state.loaded : { kind: 'loading' };
}
