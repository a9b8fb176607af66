import type { RacksealConfig } from '@rackseal/config';
import { EnvMasterKey, type MasterKeyProvider, MasterKeys } from '@rackseal/envelope';
import { MasterKeyUnavailableError } from './master-key-errors';
import { Pkcs11MasterKey, Pkcs11Token } from './pkcs11-master-key';

/** The process's master keys and how to let go of the token behind them. */
export interface OpenedMasterKeys {
  readonly keys: MasterKeys;
  close(): void;
}

/**
 * Builds the master keys config names (docs/decisions.md, "Master-key providers and rotation"):
 * the current key of MASTER_KEY_PROVIDER, plus the previous keys of a rotation in progress
 * (RACKSEAL_MASTER_KEY_PREVIOUS, PKCS11_KEY_LABEL_PREVIOUS). A pkcs11 key that is missing,
 * ambiguous or exportable stops the process here, at boot, not at the first secret.
 */
export function openMasterKeys(config: RacksealConfig['masterKey']): OpenedMasterKeys {
  let token: Pkcs11Token | undefined;
  const onToken = (label: string): Pkcs11MasterKey => {
    if (config.pkcs11 === null) {
      throw new MasterKeyUnavailableError('a pkcs11 key needs PKCS11_MODULE, PKCS11_TOKEN_LABEL and PKCS11_PIN');
    }
    token ??= Pkcs11Token.open(config.pkcs11);
    return Pkcs11MasterKey.find(token, label);
  };
  try {
    let current: MasterKeyProvider;
    if (config.provider === 'pkcs11') {
      current = onToken(config.pkcs11?.keyLabel ?? '');
    } else if (config.key !== null) {
      current = new EnvMasterKey(config.key);
    } else {
      throw new MasterKeyUnavailableError('MASTER_KEY_PROVIDER=env needs RACKSEAL_MASTER_KEY');
    }
    const previous: MasterKeyProvider[] = [];
    if (config.previous.key !== null) {
      previous.push(new EnvMasterKey(config.previous.key));
    }
    if (config.previous.pkcs11KeyLabel !== null) {
      previous.push(onToken(config.previous.pkcs11KeyLabel));
    }
    const opened = token;
    return { keys: new MasterKeys(current, previous), close: () => opened?.close() };
  } catch (error) {
    token?.close();
    throw error;
  }
}
