/**
 * The HTTP surface every endpoint inherits: validation, the one error shape, body limits, request
 * ids, health and OpenAPI. Runs the real control-plane module graph (real PostgreSQL and Redis)
 * with a test-only controller mounted beside it, configured exactly as createControlPlane does.
 */
import {
  Body,
  Controller,
  ForbiddenException,
  Get,
  type INestApplication,
  Module,
  Post,
  ServiceUnavailableException,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { IsInt, IsString, Length, Max, Min } from 'class-validator';
import { Logger } from 'nestjs-pino';
import request from 'supertest';
import { Public } from '../apps/control-plane/src/auth/auth.decorators';
import { ControlPlaneModule } from '../apps/control-plane/src/control-plane.module';
import { configureHttpApp } from '../apps/control-plane/src/http/configure-http-app';
import { createTestDatabase, type TestDatabase } from './support/database';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { testConfig } from './support/test-config';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

class EchoDto {
  @IsString()
  @Length(1, 20)
  name: string;

  @IsInt()
  @Min(1)
  @Max(10)
  count: number;
}

// Public: this suite is about validation and error shapes, not authentication (test/operator-api.test.ts).
@Public()
@Controller('test')
class ProbeController {
  @Post('echo')
  echo(@Body() body: EchoDto): { name: string; count: number; isDto: boolean } {
    return { name: body.name, count: body.count, isDto: body instanceof EchoDto };
  }

  @Get('boom')
  boom(): never {
    throw new Error('db password=hunter2 at /srv/secret');
  }

  @Get('forbidden')
  forbidden(): never {
    throw new ForbiddenException('token lacks scope machines:write');
  }

  @Get('unavailable')
  unavailable(): never {
    throw new ServiceUnavailableException('PostgreSQL is not answering');
  }

  @Get('teapot-crash')
  async rejected(): Promise<never> {
    await Promise.resolve();
    throw Object.assign(new TypeError("Cannot read properties of undefined (reading 'secretValue')"), {
      query: 'SELECT * FROM secrets',
    });
  }
}

@Module({ controllers: [ProbeController] })
class ProbeModule {}

function expectNoLeak(text: string): void {
  for (const leak of ['hunter2', '/srv/secret', 'Error:', '    at ', 'secretValue', 'SELECT']) {
    expect(text).not.toContain(leak);
  }
}

describe('control-plane HTTP surface', () => {
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let app: INestApplication;
  let server: Parameters<typeof request>[0];

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    const config = testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' });
    const moduleRef = await Test.createTestingModule({
      imports: [ControlPlaneModule.forRoot(config), ProbeModule],
    }).compile();
    app = moduleRef.createNestApplication({ bufferLogs: true });
    app.useLogger(app.get(Logger));
    configureHttpApp(app);
    await app.init();
    server = app.getHttpServer() as Parameters<typeof request>[0];
  });

  afterAll(async () => {
    await app?.close();
    await prefix?.clear();
    await db?.drop();
  });

  describe('validation', () => {
    it('accepts a valid body, 201 with the echo, as a DTO instance', async () => {
      const res = await request(server).post('/test/echo').send({ name: 'rack-1', count: 3 });
      expect(res.status).toBe(201);
      expect(res.body).toEqual({ name: 'rack-1', count: 3, isDto: true });
    });

    it('refuses a missing field, naming it', async () => {
      const res = await request(server).post('/test/echo').send({ name: 'rack-1' });
      expect(res.status).toBe(400);
      expect(res.body).toEqual({
        statusCode: 400,
        error: 'Bad Request',
        message: expect.arrayContaining(['count must be an integer number']),
        requestId: expect.any(String),
      });
      expect((res.body as { message: string[] }).message.every((m) => m.startsWith('count '))).toBe(true);
    });

    it('refuses a value out of range', async () => {
      const res = await request(server).post('/test/echo').send({ name: 'rack-1', count: 11 });
      expect(res.status).toBe(400);
      expect(res.body.message).toEqual(['count must not be greater than 10']);
    });

    it('refuses a wrong type without converting it', async () => {
      const res = await request(server).post('/test/echo').send({ name: 'rack-1', count: '3' });
      expect(res.status).toBe(400);
      expect(res.body.message).toContain('count must be an integer number');
    });

    it('refuses a too long string', async () => {
      const res = await request(server).post('/test/echo').send({ name: 'x'.repeat(21), count: 1 });
      expect(res.status).toBe(400);
      expect(res.body.message).toEqual(['name must be shorter than or equal to 20 characters']);
    });

    it('refuses an unknown field', async () => {
      const res = await request(server).post('/test/echo').send({ name: 'rack-1', count: 3, extra: true });
      expect(res.status).toBe(400);
      expect(res.body.message).toEqual(['property extra should not exist']);
    });

    it('lists every problem at once', async () => {
      const res = await request(server).post('/test/echo').send({ name: '', count: 0, extra: 1 });
      expect(res.status).toBe(400);
      expect([...(res.body.message as string[])].sort()).toEqual(
        [
          'property extra should not exist',
          'name must be longer than or equal to 1 characters',
          'count must not be less than 1',
        ].sort(),
      );
    });

    it('refuses malformed JSON with a message, not a parser stack', async () => {
      const res = await request(server)
        .post('/test/echo')
        .set('Content-Type', 'application/json')
        .send('{"name": "rack-1", "count": 3');
      expect(res.status).toBe(400);
      expect(res.body).toEqual({
        statusCode: 400,
        error: 'Bad Request',
        message: 'request body is not valid JSON',
        requestId: expect.any(String),
      });
      expect(res.text).not.toContain('SyntaxError');
      expect(res.text).not.toContain('Unexpected');
    });

    it('refuses a body over 1 MB with 413', async () => {
      const big = JSON.stringify({ name: 'rack-1', count: 3, pad: 'x'.repeat(1024 * 1024 + 10) });
      const res = await request(server).post('/test/echo').set('Content-Type', 'application/json').send(big);
      expect(res.status).toBe(413);
      expect(res.body).toEqual({
        statusCode: 413,
        error: 'Payload Too Large',
        message: 'request body is too large',
        requestId: expect.any(String),
      });
    });

    it('still accepts a body just under the limit (then refuses the unknown field)', async () => {
      const body = JSON.stringify({ name: 'rack-1', count: 3, pad: 'x'.repeat(1000 * 1000) });
      const res = await request(server).post('/test/echo').set('Content-Type', 'application/json').send(body);
      expect(res.status).toBe(400);
      expect(res.body.message).toEqual(['property pad should not exist']);
    });
  });

  describe('errors', () => {
    it('turns an unexpected error into a 500 with only an error id', async () => {
      const res = await request(server).get('/test/boom');
      expect(res.status).toBe(500);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body).toEqual({
        statusCode: 500,
        error: 'Internal Server Error',
        message: 'internal error; quote the errorId to your operator',
        requestId: expect.any(String),
        errorId: expect.stringMatching(UUID),
      });
      expectNoLeak(res.text);
      expectNoLeak(JSON.stringify(res.headers));
    });

    it('gives each 500 its own error id, also for rejected promises', async () => {
      const [a, b] = await Promise.all([request(server).get('/test/boom'), request(server).get('/test/teapot-crash')]);
      expect(a.status).toBe(500);
      expect(b.status).toBe(500);
      expect(b.body.error).toBe('Internal Server Error');
      expect(a.body.errorId).toMatch(UUID);
      expect(b.body.errorId).toMatch(UUID);
      expect(a.body.errorId).not.toBe(b.body.errorId);
      expectNoLeak(b.text);
    });

    it('passes a 4xx HttpException through with its message', async () => {
      const res = await request(server).get('/test/forbidden');
      expect(res.status).toBe(403);
      expect(res.body).toEqual({
        statusCode: 403,
        error: 'Forbidden',
        message: 'token lacks scope machines:write',
        requestId: expect.any(String),
      });
      expect(res.body.errorId).toBeUndefined();
    });

    it('passes a 503 through with its message', async () => {
      const res = await request(server).get('/test/unavailable');
      expect(res.status).toBe(503);
      expect(res.body).toEqual({
        statusCode: 503,
        error: 'Service Unavailable',
        message: 'PostgreSQL is not answering',
        requestId: expect.any(String),
      });
    });

    it('answers an unknown route with a 404 in the error shape', async () => {
      const res = await request(server).get('/v1/no-such-thing');
      expect(res.status).toBe(404);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body).toEqual({
        statusCode: 404,
        error: 'Not Found',
        message: 'Cannot GET /v1/no-such-thing',
        requestId: expect.any(String),
      });
    });

    it('answers a wrong method with a 404 in the error shape', async () => {
      const res = await request(server).delete('/test/echo');
      expect(res.status).toBe(404);
      expect(res.body.statusCode).toBe(404);
      expect(res.body.error).toBe('Not Found');
    });
  });

  describe('request ids', () => {
    it.each([
      ['GET /health/live', () => request(server).get('/health/live'), 200],
      ['POST /test/echo', () => request(server).post('/test/echo').send({ name: 'a', count: 1 }), 201],
      ['a 400', () => request(server).post('/test/echo').send({}), 400],
      ['a 404', () => request(server).get('/nowhere'), 404],
      ['a 500', () => request(server).get('/test/boom'), 500],
      [
        'a malformed JSON body',
        () => request(server).post('/test/echo').set('Content-Type', 'application/json').send('{'),
        400,
      ],
    ])('puts a fresh X-Request-Id on %s', async (_label, send, status) => {
      const res = await send();
      expect(res.status).toBe(status);
      expect(res.headers['x-request-id']).toMatch(UUID);
      if (res.body?.requestId !== undefined) {
        expect(res.body.requestId).toBe(res.headers['x-request-id']);
      }
    });

    it('gives two requests two different ids', async () => {
      const [a, b] = await Promise.all([request(server).get('/health/live'), request(server).get('/health/live')]);
      expect(a.headers['x-request-id']).toMatch(UUID);
      expect(a.headers['x-request-id']).not.toBe(b.headers['x-request-id']);
    });

    it.each(['lb-7f3a.91:req_0001', 'A'.repeat(128), 'abc'])('echoes a well-formed incoming id %j', async (id) => {
      const res = await request(server).get('/test/forbidden').set('X-Request-Id', id);
      expect(res.status).toBe(403);
      expect(res.headers['x-request-id']).toBe(id);
      expect(res.body.requestId).toBe(id);
    });

    it.each([
      ['with spaces', 'abc def'],
      // A raw newline cannot cross HTTP/1.1 framing (Node's client refuses it); a tab can.
      ['with a tab', 'abc\tdef'],
      ['empty', ''],
      ['too long', 'A'.repeat(129)],
      ['with JSON', '"},{"level":60'],
      ['with a slash', '../../etc/passwd'],
    ])('replaces an incoming id %s', async (_label, id) => {
      const res = await request(server).get('/test/forbidden').set('X-Request-Id', id);
      expect(res.status).toBe(403);
      expect(res.headers['x-request-id']).toMatch(UUID);
      expect(res.body.requestId).toBe(res.headers['x-request-id']);
      expect(res.body.requestId).not.toBe(id);
    });
  });

  describe('health', () => {
    it('GET /health/live is 200 alive', async () => {
      const res = await request(server).get('/health/live');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ status: 'alive' });
    });

    it('GET /health/ready is 200 with PostgreSQL and Redis up', async () => {
      const res = await request(server).get('/health/ready');
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        status: 'ready',
        postgres: { status: 'up', latencyMs: expect.any(Number) },
        redis: { status: 'up', latencyMs: expect.any(Number) },
      });
    });
  });

  describe('OpenAPI', () => {
    it('serves Swagger UI at /docs', async () => {
      const res = await request(server).get('/docs');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.text).toContain('<html');
      expect(res.text).toContain('swagger-ui');
    });

    it('serves the document at /docs/openapi.json', async () => {
      const res = await request(server).get('/docs/openapi.json');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.body.openapi).toMatch(/^3\./);
      expect(res.body.info.title).toBe('rackseal');
      expect(Object.keys(res.body.paths)).toEqual(expect.arrayContaining(['/health/live', '/health/ready', '/test/echo']));
      expect(res.body.paths['/health/ready'].get.responses).toHaveProperty('503');
    });
  });
});
