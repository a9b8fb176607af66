import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type * as JsYaml from 'js-yaml';
import { type AgentConfig, AgentConfigError, parseAgentConfig } from './agent-config';

/**
 * js-yaml as its package ships it in one file (dist/js-yaml.js, the UMD build of the same release),
 * not its index, which loads lib/ as 25 modules: ~8 ms more CPU on every boot unlock
 * (docs/decisions.md "Boot unlock loads single files"). The package's `exports` name only the index,
 * so the file is found beside the index require.resolve names; the initramfs hook copies the whole
 * package (deploy/initramfs-tools/hooks/rackseal).
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a file path, not a module name: see above
const { CORE_SCHEMA, load, YAMLException } = require(join(dirname(require.resolve('js-yaml')), 'dist', 'js-yaml.js')) as typeof JsYaml;

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
    bytes = await readBounded(path);
  } catch (error) {
    if (error instanceof AgentConfigError) {
      throw error;
    }
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
    if (code === 'ENOENT' && optional) {
      return parseAgentConfig(undefined, path);
    }
    throw new AgentConfigError(path, '', code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`);
  }
  return parseAgentConfigText(bytes.toString('utf8'), path);
}

/** The config file's text (read from `path`) as YAML, validated: what loadAgentConfig does after reading. */
export function parseAgentConfigText(text: string, path: string): AgentConfig {
  let document: unknown;
  try {
    document = load(text, { filename: path, schema: CORE_SCHEMA });
  } catch (error) {
    const reason = error instanceof YAMLException ? `${error.reason} (line ${error.mark.line + 1}, column ${error.mark.column + 1})` : 'is not YAML';
    throw new AgentConfigError(path, '', `is not valid YAML: ${reason}`);
  }
  return parseAgentConfig(document, path);
}

/**
 * The file's bytes, at most MAX_CONFIG_BYTES. Opened non-blocking and checked to be a regular file
 * first: a FIFO or a device (/dev/zero) at the config path would otherwise hang the boot unlock or
 * read until memory runs out. Symbolic links are followed: configuration management often links
 * /etc files.
 */
async function readBounded(path: string): Promise<Buffer> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (!(await handle.stat()).isFile()) {
      throw new AgentConfigError(path, '', 'is not a regular file');
    }
    const buffer = Buffer.alloc(MAX_CONFIG_BYTES + 1);
    let total = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, total, buffer.length - total, null);
      if (bytesRead === 0) {
        return buffer.subarray(0, total);
      }
      total += bytesRead;
      if (total > MAX_CONFIG_BYTES) {
        throw new AgentConfigError(path, '', `is larger than ${MAX_CONFIG_BYTES} bytes`);
      }
    }
  } finally {
    await handle.close();
  }
}
