import { pinnedCaFetch } from '@rackseal/command-line/pinned-ca-fetch';

let pinned: typeof fetch | undefined;

/**
 * Pins the control plane's CA for this process (`--server-ca`, `serverCa:` in agent.yaml): from
 * now on every node API call trusts only it, never the system's CAs. An agent talks to one control
 * plane, so its trust anchor is a process setting, set once by the command before any call (the
 * clients are made in many places; threading the CA through each would let one forget it).
 */
export function pinServerCa(caPem: string): void {
  pinned = pinnedCaFetch(caPem);
}

/** The fetch the node API client sends with: the pinned CA's, else Node's (the system's CAs). */
export function serverFetch(): typeof fetch {
  return pinned ?? fetch;
}
