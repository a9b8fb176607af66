/**
 * A control-plane process for the request-id log suite: the product's root module and HTTP set-up
 * (ControlPlaneModule, configureHttpApp: what createControlPlane builds) plus two test-only routes
 * that log from inside the request — one line before and one after an await, and an unexpected
 * error the exception filter logs — so the suite can check every line of a request carries its id.
 */
import 'reflect-metadata';
import { Controller, Get, Logger as NestLogger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { loadConfigOrExit } from '@rackseal/runtime';
import { Logger } from 'nestjs-pino';
import { Public } from '../../apps/control-plane/src/auth/auth.decorators';
import { ControlPlaneModule } from '../../apps/control-plane/src/control-plane.module';
import { configureHttpApp } from '../../apps/control-plane/src/http/configure-http-app';

@Public()
@Controller('test')
class LoggingProbeController {
  private readonly logger = new NestLogger('Probe');

  @Get('log')
  async log(): Promise<{ ok: true }> {
    this.logger.log('probe: before the await');
    await new Promise((resolve) => setTimeout(resolve, 5));
    this.logger.warn('probe: after the await');
    return { ok: true };
  }

  @Get('boom')
  boom(): never {
    throw new Error('probe failure');
  }
}

@Module({ controllers: [LoggingProbeController] })
class LoggingProbeModule {}

@Module({})
class ProbeRootModule {
  static forRoot(config: ReturnType<typeof loadConfigOrExit>) {
    return { module: ProbeRootModule, imports: [ControlPlaneModule.forRoot(config), LoggingProbeModule] };
  }
}

async function main(): Promise<void> {
  const config = loadConfigOrExit('control-plane');
  const app = await NestFactory.create(ProbeRootModule.forRoot(config), { bufferLogs: true });
  app.useLogger(app.get(Logger));
  configureHttpApp(app);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  new NestLogger('ControlPlane').log({ port }, `control plane listening on port ${port}`);
}

main().catch((error: unknown) => {
  process.stderr.write(`probe control plane: failed to start: ${(error as Error).message}\n`);
  process.exit(1);
});
