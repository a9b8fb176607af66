import { CliError } from '@rackseal/command-line/cli-error';
import type { OptionValues } from '@rackseal/command-line/command-tree';
import { AgentConfigError } from '../install/agent-config';
import { DEFAULT_AGENT_CONFIG_PATH, loadAgentConfig } from '../install/agent-config-file';
import { DEFAULT_IMA_LIST, DEFAULT_STATE_DIR, DEFAULT_TPM_DEVICE } from './tpm.command';

/**
 * The options of `enroll`, `status` and `run` with the config file's defaults filled in: a flag
 * given on the command line wins, then the file's `server`, `serverCa`, `tpm`, `stateDir` and `imaList`, then the built-in
 * defaults. `--config` names the file; without it /etc/rackseal/agent.yaml is read when it exists
 * (a machine with no config file runs as before). A file that does not validate is exit 2, naming
 * the field. A server CA (`--server-ca`, `serverCa`) is pinned for the process here. Loaded with the command's code, never by `--help` (docs/decisions.md "The agent's
 * start at boot").
 */
export async function withAgentConfig(options: OptionValues, command: string): Promise<OptionValues> {
  const path = typeof options.config === 'string' ? options.config : DEFAULT_AGENT_CONFIG_PATH;
  let config;
  try {
    config = await loadAgentConfig(path, options.config === undefined);
  } catch (error) {
    throw error instanceof AgentConfigError ? CliError.usage(`${command}: config file ${error.message}`) : error;
  }
  const server = options.server ?? config.server;
  const serverCa = options.serverCa ?? config.serverCa;
  // An offline unlock (at boot, before the network) talks to no server: a CA file it cannot read must not stop it.
  const talksToServer = command !== 'unlock' || options.online === true;
  if (serverCa !== undefined && talksToServer) {
    // Before any call: from here on the node API trusts this CA only (server-trust.ts).
    const { CaFileError, readCaFile } = await import('@rackseal/command-line/pinned-ca-fetch');
    let pem: string;
    try {
      pem = readCaFile(String(serverCa));
    } catch (error) {
      throw error instanceof CaFileError ? CliError.usage(`${command}: --server-ca: ${error.message}`) : error;
    }
    if (typeof server === 'string' && !server.startsWith('https://')) {
      throw CliError.usage(`${command}: --server-ca pins the CA of an https:// server; ${JSON.stringify(server)} is not one`);
    }
    (await import('../node-api/server-trust')).pinServerCa(pem);
  }
  return {
    ...options,
    tpm: options.tpm ?? config.tpm ?? DEFAULT_TPM_DEVICE,
    stateDir: options.stateDir ?? config.stateDir ?? DEFAULT_STATE_DIR,
    imaList: options.imaList ?? config.imaList ?? DEFAULT_IMA_LIST,
    ...(server === undefined ? {} : { server }),
  };
}
