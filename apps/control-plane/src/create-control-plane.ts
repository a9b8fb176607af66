import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { RacksealConfig } from '@rackseal/config';
import { Logger } from 'nestjs-pino';
import { ControlPlaneModule } from './control-plane.module';
import { configureHttpApp } from './http/configure-http-app';

/** Builds the fully configured HTTP app; main.ts and the tests share it so they cannot drift. */
export async function createControlPlane(config: RacksealConfig): Promise<INestApplication> {
  const app = await NestFactory.create(ControlPlaneModule.forRoot(config), { bufferLogs: true });
  app.useLogger(app.get(Logger));
  configureHttpApp(app);
  app.enableShutdownHooks();
  return app;
}
