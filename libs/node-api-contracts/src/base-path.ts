/**
 * Where the node API lives: the HTTP surface the agents call (docs/architecture.md §4.3-§4.8:
 * registration and attestation, key certification, deliveries), apart from the operator API under
 * `/v1`.
 *
 * Its own prefix, before the version, so a load balancer or firewall can route, limit and
 * authenticate all node traffic by one rule (nodes present a node credential, never an operator
 * token), and so the node API can take a new version without the operator API taking one, and the
 * other way round: agents in initramfs images are upgraded much later than operators' CLIs.
 */

/** The node API's version. A breaking change to any route adds a new version beside this one. */
export const NODE_API_VERSION = 'v1';

/** Every node API route is below this path, e.g. `${NODE_API_BASE_PATH}/registrations`. */
export const NODE_API_BASE_PATH = `/node/${NODE_API_VERSION}` as const;

/**
 * A node API route's path from its path below the base (`registrations`, `/registrations`), for the
 * agent's requests and the control plane's `@Controller` alike, so neither writes the prefix.
 */
export function nodeApiPath(route: string): string {
  const below = route.replace(/^\/+/, '');
  return below === '' ? NODE_API_BASE_PATH : `${NODE_API_BASE_PATH}/${below}`;
}
