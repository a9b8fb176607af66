import { type ConfigSection, ConfigError, loadConfig, loadConfigSections, type PartialConfig, type RacksealConfig } from '@rackseal/config';

/** sysexits EX_CONFIG: the process cannot start because its configuration is wrong. */
export const EXIT_CONFIG = 78;

/**
 * Validates the environment once. A bad configuration ends the process with a message naming each
 * bad variable and exit code 78, before any connection is attempted.
 */
export function loadConfigOrExit(processName: string, env: NodeJS.ProcessEnv = process.env): RacksealConfig {
  try {
    return loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`rackseal ${processName}: ${error.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw error;
  }
}

/** loadConfigOrExit for a process that needs only some sections (e.g. `npm run migrate`: the database). */
export function loadConfigSectionsOrExit<S extends ConfigSection>(processName: string, sections: readonly S[], env: NodeJS.ProcessEnv = process.env): PartialConfig<S> {
  try {
    return loadConfigSections(env, sections);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`rackseal ${processName}: ${error.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw error;
  }
}
