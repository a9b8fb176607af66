import type { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { RacksealConfig } from '@rackseal/config';
import { Logger } from 'nestjs-pino';
import { WorkerModule, type WorkerOptions } from './worker.module';

/** The worker is an application context: no HTTP server, only queue consumers. */
export async function createWorker(config: RacksealConfig, options: WorkerOptions = {}): Promise<INestApplicationContext> {
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config, undefined, options), { bufferLogs: true });
  app.useLogger(app.get(Logger));
  app.enableShutdownHooks();
  return app;
}
