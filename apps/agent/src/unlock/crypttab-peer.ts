import { readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { UnlockError } from './unlock-errors';

/**
 * The systemd-cryptsetup path (deploy/systemd/rackseal-unlock.socket): crypttab's key file field
 * names rackseal's AF_UNIX socket, systemd-cryptsetup connects to it from a socket bound to the
 * abstract name `\0<random>/cryptsetup/<volume>` (crypttab(5), "AF_UNIX KEY FILES"), and systemd
 * (Accept=yes) starts `rackseal-unlock@<n>-<pid>-<uid>.service` with the connection as its stdout.
 * Node cannot call getpeername(2) on that descriptor, so the volume is found from the peer's side:
 * the peer's PID (from the instance name, SO_PEERCRED's as systemd read it) → the sockets it holds
 * (/proc/PID/fd) → their bound names in the peer's /proc/PID/net/unix (its network namespace's view, whatever ours is) (`@` stands for the leading NUL). The volume
 * names its device in /etc/crypttab.
 */

/** crypttab(5): the random part is alphanumeric; the volume a device-mapper name. */
const PEER_NAME = /^@[A-Za-z0-9]+\/cryptsetup\/([^/\s]{1,127})$/;
/** systemd.socket(5) Accept=yes instance for AF_UNIX: `<connection number>-<peer PID>-<peer UID>`. */
const INSTANCE = /^([0-9]+)-([0-9]+)-([0-9]+)$/;

export interface PeerOptions {
  readonly procDir?: string;
  readonly crypttab?: string;
}

/** The volume and device systemd-cryptsetup asks the key of, from the Accept=yes instance name (`%i`). */
export async function crypttabPeer(instance: string, options: PeerOptions = {}): Promise<{ volume: string; device: string }> {
  const proc = options.procDir ?? '/proc';
  const crypttab = options.crypttab ?? '/etc/crypttab';
  const match = INSTANCE.exec(instance);
  if (match === null) {
    throw new UnlockError('unlock.no-volume', `--crypttab-peer ${JSON.stringify(instance)} is not a systemd Accept=yes instance of an AF_UNIX connection (<n>-<pid>-<uid>)`);
  }
  const [, , pid, uid] = match;
  if (uid !== '0') {
    // systemd-cryptsetup runs as root; the socket is root's alone (SocketMode=0600) anyway.
    throw new UnlockError('unlock.no-volume', `the peer (pid ${pid}) runs as uid ${uid}, not root: only systemd-cryptsetup is served`);
  }
  const inodes = new Set<string>();
  let fds: string[];
  try {
    fds = await readdir(join(proc, pid!, 'fd'));
  } catch (error) {
    throw new UnlockError('unlock.no-volume', `cannot read the peer's descriptors (${join(proc, pid!, 'fd')}: ${(error as NodeJS.ErrnoException).code ?? 'error'}): it has gone`);
  }
  for (const fd of fds) {
    const target = await readlink(join(proc, pid!, 'fd', fd)).catch(() => '');
    const inode = /^socket:\[([0-9]+)\]$/.exec(target)?.[1];
    if (inode !== undefined) {
      inodes.add(inode);
    }
  }
  // /proc/net/unix: "Num RefCount Protocol Flags Type St Inode Path", the path absent when unbound.
  const volumes = new Set<string>();
  for (const line of (await readFile(join(proc, pid!, 'net', 'unix'), 'utf8')).split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const volume = fields.length >= 8 && inodes.has(fields[6]!) ? PEER_NAME.exec(fields.slice(7).join(' '))?.[1] : undefined;
    if (volume !== undefined) {
      volumes.add(volume);
    }
  }
  if (volumes.size !== 1) {
    throw new UnlockError('unlock.no-volume', `the peer (pid ${pid}) holds ${volumes.size === 0 ? 'no socket named' : 'several sockets named'} \\0<random>/cryptsetup/<volume>: it is not systemd-cryptsetup asking for one volume`);
  }
  const volume = [...volumes][0]!;
  return { volume, device: await crypttabDevice(crypttab, volume) };
}

/** crypttab(5): `volume-name encrypted-device key-file options`; the device as a path or UUID=/PARTUUID=/LABEL=/PARTLABEL=. */
export async function crypttabDevice(crypttab: string, volume: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(crypttab, 'utf8');
  } catch (error) {
    throw new UnlockError('unlock.no-volume', `cannot read ${crypttab} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] === undefined || fields[0].startsWith('#') || fields[0] !== volume || fields[1] === undefined) {
      continue;
    }
    const spec = /^(UUID|PARTUUID|LABEL|PARTLABEL)=(.+)$/.exec(fields[1]);
    if (spec !== null) {
      // udev's names (60-persistent-storage.rules), which systemd-cryptsetup-generator uses too.
      return `/dev/disk/by-${spec[1]!.toLowerCase()}/${spec[2]!}`;
    }
    if (fields[1].startsWith('/')) {
      return fields[1];
    }
    throw new UnlockError('unlock.no-volume', `${crypttab}: volume ${JSON.stringify(volume)} names its device as ${JSON.stringify(fields[1].slice(0, 80))}, neither a path nor UUID=, PARTUUID=, LABEL=, PARTLABEL=`);
  }
  throw new UnlockError('unlock.no-volume', `${crypttab} has no line for volume ${JSON.stringify(volume)}`);
}
