import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { ControlPlaneModule } from './control-plane.module';
import { buildOpenApiDocument } from './http/openapi';
import { loadConfig } from '@rackseal/config';

/**
 * Prints the OpenAPI document (checked in as openapi.json). Builds the module graph without
 * connecting anywhere (`preview`), so it needs no database.
 */
async function main(): Promise<void> {
  const config = loadConfig({ RACKSEAL_ENV: 'test' });
  const app = await NestFactory.create(ControlPlaneModule.forRoot(config), { preview: true, logger: false });
  process.stdout.write(`${JSON.stringify(buildOpenApiDocument(app), null, 2)}\n`);
  await app.close();
}

main().catch((error: unknown) => {
  process.stderr.write(`rackseal openapi: ${(error as Error).message}\n`);
  process.exit(1);
});
