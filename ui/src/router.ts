import { useEffect, useState } from 'preact/hooks';

/** A dashboard location: the part of the URL after `#`, e.g. `/machines/SN-1` or `/machines?state=quarantined`. */
export interface Route {
  readonly path: string;
  readonly query: URLSearchParams;
}

function current(): Route {
  const hash = window.location.hash.replace(/^#/, '') || '/';
  const [path = '/', query = ''] = hash.split('?', 2);
  return { path, query: new URLSearchParams(query) };
}

/**
 * Hash routing: every view has a URL (bookmarkable, back button) while the control plane serves one
 * index.html at /ui/ and needs no route of its own per view.
 */
export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const changed = (): void => setRoute(current());
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  return route;
}

export function href(path: string, query?: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== '') {
      params.set(key, value);
    }
  }
  const text = params.toString();
  return `#${path}${text.length > 0 ? `?${text}` : ''}`;
}

/** A path segment decoded, or undefined when it is not valid percent-encoding (a hand-edited or crafted URL): decodeURIComponent would throw and blank the page. */
export function decodedSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
