import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { loadConfigOrExit } from '@rackseal/runtime';
import { createControlPlane } from './create-control-plane';

async function main(): Promise<void> {
  const config = loadConfigOrExit('control-plane');
  const app = await createControlPlane(config);
  await app.listen(config.http.port, config.http.host);
  const address = app.getHttpServer().address() as { port: number };
  const logger = new Logger('ControlPlane');
  if (config.masterKey.isDevelopmentKey) {
    logger.warn(`RACKSEAL_ENV=${config.env}: using the public development master key`);
  }
  const scheme = config.http.tls === null ? 'http' : 'https';
  logger.log({ port: address.port, env: config.env, scheme }, `control plane listening on port ${address.port} (${scheme})`);
}

main().catch((error: unknown) => {
  process.stderr.write(`rackseal control-plane: failed to start: ${(error as Error).message}\n`);
  process.exit(1);
});
