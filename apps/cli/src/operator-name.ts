import { userInfo } from 'node:os';

/** Who ran a database command, for its audit records: the login name ($USER is unset under sudo -i, cron, containers). */
export function operatorName(): string {
  try {
    return process.env.USER ?? userInfo().username;
  } catch {
    return 'unknown';
  }
}
