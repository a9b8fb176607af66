import { readFile } from 'node:fs/promises';
import type { Owner } from './agent-config';
import { InstallError } from './install-errors';

/**
 * User and group names to ids, read from /etc/passwd and /etc/group (passwd(5), group(5): name is
 * the first colon-separated field, the id the third). Node has no getpwnam(3), and the agent runs in
 * an initramfs where only these files exist; users from LDAP or another NSS source are given by id.
 * Read at each install rather than at start-up: a service's user may be created after the agent.
 */
export async function resolveOwner(owner: Owner | undefined, database: 'passwd' | 'group', etcDir = '/etc'): Promise<number> {
  if (owner === undefined) {
    return -1; // chown(2): unchanged
  }
  if ('id' in owner) {
    return owner.id;
  }
  const file = `${etcDir}/${database}`;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new InstallError('install.unknown-owner', `cannot read ${file} to find ${database === 'passwd' ? 'user' : 'group'} ${owner.name} (${(error as NodeJS.ErrnoException).code ?? 'unknown error'}); give its number instead`);
  }
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    if (fields[0] === owner.name && fields.length >= 3 && /^[0-9]+$/.test(fields[2]!)) {
      return Number(fields[2]);
    }
  }
  throw new InstallError('install.unknown-owner', `${database === 'passwd' ? 'user' : 'group'} ${owner.name} is not in ${file}; create it, or give its number`);
}
