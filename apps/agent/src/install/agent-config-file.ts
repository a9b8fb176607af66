import { readFile } from 'node:fs/promises';
import { CORE_SCHEMA, load, YAMLException } from 'js-yaml';
import { type AgentConfig, AgentConfigError, parseAgentConfig } from './agent-config';

/** Where the agent looks for its config file when `--config` is not given. */
export const DEFAULT_AGENT_CONFIG_PATH = '/etc/rackseal/agent.yaml';

/** A config file is a few hundred lines at most; anything larger is not one. */
const MAX_CONFIG_BYTES = 1024 * 1024;

/**
 * Reads and validates the agent's config file (agent-config.ts). YAML 1.2 core schema: no custom
 * tags, timestamps or merge keys, and a key given twice is refused by js-yaml. This file is the
 * only one that loads js-yaml, and only commands that need the config import it (never `--help`:
 * docs/decisions.md "The agent's start at boot"). `optional`: a missing file at the default path
 * is an empty config rather than an error.
 */
export async function loadAgentConfig(path: string, optional = false): Promise<AgentConfig> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
    if (code === 'ENOENT' && optional) {
      return parseAgentConfig(undefined, path);
    }
    throw new AgentConfigError(path, '', code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`);
  }
  if (bytes.length > MAX_CONFIG_BYTES) {
    throw new AgentConfigError(path, '', `is larger than ${MAX_CONFIG_BYTES} bytes`);
  }
  let document: unknown;
  try {
    document = load(bytes.toString('utf8'), { filename: path, schema: CORE_SCHEMA });
  } catch (error) {
    const reason = error instanceof YAMLException ? `${error.reason} (line ${error.mark.line + 1}, column ${error.mark.column + 1})` : 'is not YAML';
    throw new AgentConfigError(path, '', `is not valid YAML: ${reason}`);
  }
  return parseAgentConfig(document, path);
}
