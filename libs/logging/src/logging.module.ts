import { type DynamicModule, Module } from '@nestjs/common';
import type { RacksealConfig } from '@rackseal/config';
import { LoggerModule } from 'nestjs-pino';
import { redactUrl } from './redact-url';
import { assignRequestId } from './request-id';

/** Paths pino blanks out wherever they appear: credentials must never reach a log line. */
export const REDACTED_LOG_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-rackseal-token"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.secret',
  '*.token',
  '*.masterKey',
];

/**
 * JSON logs on stdout, one line per event, each HTTP request tagged with its request id.
 * `process` names the emitting process so logs of control plane and worker can be merged.
 */
@Module({})
export class LoggingModule {
  static forRoot(config: RacksealConfig, process: 'control-plane' | 'worker'): DynamicModule {
    return {
      module: LoggingModule,
      imports: [
        LoggerModule.forRoot({
          pinoHttp: {
            level: config.logLevel,
            base: { process },
            genReqId: assignRequestId,
            customProps: () => ({}),
            redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' },
            serializers: {
              // The path only, query values redacted: a caller may put a token in the query string.
              req: (req: { id: string; method: string; url: string }) => ({
                id: req.id,
                method: req.method,
                url: redactUrl(req.url),
              }),
              res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
            },
            // Probes hit health endpoints every few seconds; logging each would drown real requests.
            autoLogging: { ignore: (req) => (req.url ?? '').startsWith('/health/') },
          },
        }),
      ],
      exports: [LoggerModule],
    };
  }
}
