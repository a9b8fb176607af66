import { Logger, type Provider } from '@nestjs/common';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import { MasterKeys } from '@rackseal/envelope';
import { Clock } from '@rackseal/platform';
import { DataSource } from 'typeorm';
import { CheckpointSigner } from './audit-checkpoints';
import { AuditSequencer } from './audit-sequencer';

/** The audit sequencer with its signer, built from the validated config: the worker runs it (audit-sequencer-host). */
export const AUDIT_SEQUENCER_PROVIDER: Provider = {
  provide: AuditSequencer,
  inject: [DataSource, Clock, RACKSEAL_CONFIG, MasterKeys],
  useFactory: (dataSource: DataSource, clock: Clock, config: RacksealConfig, keys: MasterKeys) => {
    const logger = new Logger('AuditSequencer');
    const signer = new CheckpointSigner({
      origin: config.audit.origin,
      masterKey: keys,
      signingKeySeed: config.audit.signingKeySeed,
    });
    return new AuditSequencer(dataSource, signer, clock, { maxMergeDelayMs: config.audit.maxMergeDelayMs }, {
      log: (message) => logger.log(message),
      error: (message) => logger.error(message),
    });
  },
};
