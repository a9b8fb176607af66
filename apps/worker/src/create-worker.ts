import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { RacksealConfig } from '@rackseal/config';
import { Logger } from 'nestjs-pino';
import { WorkerModule } from './worker.module';

/** The worker is an application context: no HTTP server, only queue consumers. */
export async function createWorker(config: RacksealConfig): Promise<INestApplicationContext> {
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config), { bufferLogs: true });
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks();
  return app;
}
