import { Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { AuditSequencer } from '@rackseal/audit';

/**
 * Runs the audit sequencer in this worker (libs/audit audit-sequencer.ts): every worker competes for
 * the sequencer lock, one integrates and signs, the others stand by to take over when it dies.
 */
@Injectable()
export class AuditSequencerHost implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(private readonly sequencer: AuditSequencer) {}

  onApplicationBootstrap(): void {
    this.sequencer.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.sequencer.stop();
  }
}
