import type { INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { RacksealConfig } from '@rackseal/config';
import { Logger } from 'nestjs-pino';
import { ControlPlaneModule } from './control-plane.module';
import { httpsOptionsOf } from './hardening/tls-options';
import { configureHttpApp } from './http/configure-http-app';

/**
 * Builds the fully configured HTTP app; main.ts and the tests share it so they cannot drift. With
 * TLS_CERT_FILE and TLS_KEY_FILE it serves HTTPS only (docs/guide/hardening.md).
 */
export async function createControlPlane(config: RacksealConfig): Promise<INestApplication> {
  const httpsOptions = httpsOptionsOf(config);
  const app = await NestFactory.create(ControlPlaneModule.forRoot(config), { bufferLogs: true, ...(httpsOptions === undefined ? {} : { httpsOptions }) });
  app.useLogger(app.get(Logger));
  configureHttpApp(app);
  app.enableShutdownHooks();
  return app;
}
