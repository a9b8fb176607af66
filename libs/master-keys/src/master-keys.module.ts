import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import { MasterKeys } from '@rackseal/envelope';
import { type OpenedMasterKeys, openMasterKeys } from './open-master-keys';

/** Opens the master keys once per process and closes the token session at shutdown. */
class MasterKeysHolder implements OnApplicationShutdown {
  readonly opened: OpenedMasterKeys;

  constructor(@Inject(RACKSEAL_CONFIG) config: RacksealConfig) {
    this.opened = openMasterKeys(config.masterKey);
  }

  onApplicationShutdown(): void {
    this.opened.close();
  }
}

/**
 * Makes the process's MasterKeys injectable (libs/envelope's class is the token): what every
 * library that seals or opens a secret at rest takes, never the key itself.
 */
@Global()
@Module({
  providers: [MasterKeysHolder, { provide: MasterKeys, inject: [MasterKeysHolder], useFactory: (holder: MasterKeysHolder) => holder.opened.keys }],
  exports: [MasterKeys],
})
export class MasterKeysModule {}
