import { Option } from 'commander';
import type { ServerOptions } from '../server-client';

/**
 * `--server [url]` for the commands that talk to PostgreSQL by default (`token create`, `audit
 * verify`) and to the control plane only when asked: bare `--server` takes $RACKSEAL_SERVER. The
 * environment alone never switches them, because the two paths trust different things (DATABASE_URL
 * credentials vs an operator token and the control plane) and an auditor must know which one
 * answered.
 */
export function explicitServerOption(): Option {
  return new Option('--server [url]', 'ask this control plane instead of PostgreSQL (bare --server: $RACKSEAL_SERVER)');
}

/** The ServerOptions for ServerClient.fromOptions, or undefined when the database is meant. */
export function explicitServer(options: { server?: string | true; token?: string }): ServerOptions | undefined {
  if (options.server === undefined) {
    return undefined;
  }
  return { server: options.server === true ? undefined : options.server, token: options.token };
}
