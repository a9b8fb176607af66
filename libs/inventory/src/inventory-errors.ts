import { domainErrorFor, type ErrorCodeTable } from '@rackseal/api-contracts';

/** Every code this library throws, with its kind (the README lists them with their HTTP status). */
export const INVENTORY_ERROR_CODES = {
  'inventory.invalid-file': 'invalid',
  'inventory.too-large': 'too-large',
  'inventory.upload-idle': 'timeout',
  'inventory.upload-interrupted': 'invalid',
  'inventory.busy': 'unavailable',
  'inventory.row-checker-crashed': 'unavailable',
  'inventory.import-not-found': 'not-found',
} as const satisfies ErrorCodeTable;
export type InventoryErrorCode = keyof typeof INVENTORY_ERROR_CODES;

/** A refusal of this library, carrying one of INVENTORY_ERROR_CODES. */
export class InventoryError extends domainErrorFor(INVENTORY_ERROR_CODES) {}

/** The upload stopped before its end (the client went away or reset the connection); nothing was imported. */
export class UploadInterruptedError extends InventoryError {
  constructor(cause?: unknown) {
    super('inventory.upload-interrupted', 'the upload was interrupted; nothing was imported', { cause });
    this.name = 'UploadInterruptedError';
  }
}

/** No inventory import has this id. */
export class InventoryImportNotFoundError extends InventoryError {
  constructor(readonly id: string) {
    super('inventory.import-not-found', `no inventory import ${id}`);
    this.name = 'InventoryImportNotFoundError';
  }
}
