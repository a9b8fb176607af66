import type { SealedSecretRefusal } from '@rackseal/tpm2';

/**
 * Why the agent's state dir cannot be used, one class per cause so `enroll`, `run` and `status` can
 * each say what to do. Messages name the file and the cause, never a secret (the state dir holds
 * none in clear anyway).
 */
export type StateErrorKind = 'not-enrolled' | 'corrupt' | 'foreign-tpm' | 'permissions' | 'io';

export abstract class StateDirError extends Error {
  abstract readonly kind: StateErrorKind;

  constructor(
    /** The file or directory concerned. */
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The state dir, or a file enrollment writes into it, does not exist: this machine is not enrolled. */
export class StateNotEnrolledError extends StateDirError {
  readonly kind = 'not-enrolled';

  constructor(path: string) {
    super(path, `${path} does not exist: this machine is not enrolled (run rackseal-agent enroll)`);
    this.name = 'StateNotEnrolledError';
  }
}

/** A state file exists but is not what the agent writes: truncated, edited, or of an unknown version. */
export class StateCorruptError extends StateDirError {
  readonly kind = 'corrupt';

  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super(path, `${path} is corrupt: ${reason} (enroll again to replace it)`, options);
    this.name = 'StateCorruptError';
  }
}

/**
 * This TPM refuses a sealed blob of the state dir. `other-parent`: the blob names a storage key this
 * TPM does not have — the dir was copied from another machine, or this TPM's owner hierarchy was
 * cleared since enrollment. `integrity`: the TPM's own check of the blob failed (TPM_RC_INTEGRITY) —
 * sealed by another TPM, or altered. Either way only a new enrollment helps.
 */
export class StateForeignTpmError extends StateDirError {
  readonly kind = 'foreign-tpm';

  constructor(
    path: string,
    readonly refusal: SealedSecretRefusal,
    options?: { cause?: unknown },
  ) {
    super(
      path,
      refusal === 'other-parent'
        ? `${path} was sealed by another TPM: the state dir was copied from another machine, or this TPM was cleared since enrollment (enroll again)`
        : `${path} is refused by this machine's TPM (TPM_RC_INTEGRITY): it was sealed by another TPM, or altered (enroll again)`,
      options,
    );
    this.name = 'StateForeignTpmError';
  }
}

/**
 * The state dir or a file in it is not safe to trust: owned by another user, writable by group or
 * others, a symbolic link, not a directory or not a regular file, or not accessible to the agent.
 */
export class StatePermissionError extends StateDirError {
  readonly kind = 'permissions';

  constructor(path: string, reason: string) {
    super(path, `${path}: ${reason}`);
    this.name = 'StatePermissionError';
  }
}

/** Reading or writing failed for another reason (disk full, read-only file system, I/O error). */
export class StateIoError extends StateDirError {
  readonly kind = 'io';

  constructor(
    path: string,
    readonly operation: string,
    readonly code: string,
  ) {
    super(path, `cannot ${operation} ${path}: ${code}`);
    this.name = 'StateIoError';
  }
}
