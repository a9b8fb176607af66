import type { SecretVersionDetail, SecretView } from '@rackseal/api-contracts';

const DAY_MS = 86_400_000;

/** When and how the worker's schedule makes a new version (libs/secrets SecretsRepository.dueForRotation), in words. */
export function scheduleOf(secret: SecretView): string {
  const p = secret.parameters;
  switch (secret.kind) {
    case 'disk':
      return (p.rotateEveryDays ?? 0) > 0 ? `a new key every ${p.rotateEveryDays} d` : 'on demand only';
    case 'tls':
    case 'kubelet-client':
      return `renewed ${p.renewBeforeDays ?? '?'} d before each certificate ends (valid ${p.validityDays ?? '?'} d)`;
    case 'opaque':
      return 'on demand only';
  }
}

/**
 * When the schedule next makes a version, as the worker decides it: a disk key when the latest
 * version is rotateEveryDays old; a certificate kind when its earliest certificate is within
 * renewBeforeDays of notAfter. Without the version's certificates (the list), the certificate
 * kinds are estimated from the version's creation (certificates are issued then, valid validityDays;
 * machines attesting later get later ones) and said to be an estimate. Null: never on a schedule.
 */
export function nextRotationOf(secret: SecretView, latest?: SecretVersionDetail): { at: Date; estimate: boolean } | null {
  const p = secret.parameters;
  const created = new Date(secret.latestVersion.createdAt).getTime();
  if (secret.kind === 'disk') {
    return (p.rotateEveryDays ?? 0) > 0 ? { at: new Date(created + p.rotateEveryDays! * DAY_MS), estimate: false } : null;
  }
  if (secret.kind === 'opaque' || p.renewBeforeDays === undefined) {
    return null;
  }
  const ends = (latest?.materials ?? []).map((m) => (m.notAfter === null ? Number.NaN : new Date(m.notAfter).getTime())).filter((t) => !Number.isNaN(t));
  if (ends.length > 0) {
    return { at: new Date(Math.min(...ends) - p.renewBeforeDays * DAY_MS), estimate: false };
  }
  return p.validityDays === undefined ? null : { at: new Date(created + (p.validityDays - p.renewBeforeDays) * DAY_MS), estimate: true };
}

/** A secret's target in words: its group, or the one machine. */
export function targetOf(secret: SecretView): string {
  return secret.target.group !== null ? `group ${secret.target.group}` : `machine ${secret.target.serial ?? secret.target.machineId ?? '?'}`;
}
