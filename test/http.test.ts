/**
 * The HTTP surface every endpoint inherits: validation, the one error shape, body limits, request
 * ids, health and OpenAPI. Runs the real control-plane module graph (real PostgreSQL and Redis)
 * with a test-only controller mounted beside it, configured exactly as createControlPlane does.
 */
import {
  BadRequestException,
  Body,
  Controller,
  ForbiddenException,
  Get,
  type INestApplication,
  Logger as NestLogger,
  Module,
  Param,
  Post,
  Query,
  ServiceUnavailableException,
} from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Type } from 'class-transformer';
import { IsArray, IsInt, IsOptional, IsString, Length, Max, Min, ValidateNested } from 'class-validator';
import { Logger } from 'nestjs-pino';
import { Pool } from 'pg';
import request from 'supertest';
import { DataSource } from 'typeorm';
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

class LabelDto {
  @IsString()
  value: string;
}

class NestedDto {
  @IsArray()
  @ValidateNested({ each: true })
  @Type(() => LabelDto)
  labels: LabelDto[];
}

class SearchQueryDto {
  @IsOptional()
  @IsString()
  q?: string;
}

const SECRET_PARAMETER = 'c2VjcmV0LWRlcml2ZWQtdmFsdWU';

// Public: this suite is about validation and error shapes, not authentication (test/operator-api.test.ts).
@Public()
@Controller('test')
class ProbeController {
  constructor(private readonly dataSource: DataSource) {}

  @Post('nested')
  nested(@Body() body: NestedDto): { count: number } {
    return { count: body.labels.length };
  }

  @Get('search')
  search(@Query() query: SearchQueryDto): { q: string | null } {
    return { q: query.q ?? null };
  }

  @Get('items/:name')
  item(@Param('name') name: string): { name: string } {
    return { name };
  }

  @Get('many-problems')
  manyProblems(): never {
    throw new BadRequestException([...Array.from({ length: 150_000 }, (_, i) => `column_${i} is not a known column`)]);
  }

  @Get('long-problem')
  longProblem(): never {
    throw new BadRequestException(`unknown value ${'x'.repeat(100_000)}`);
  }

  /** A real PostgreSQL error whose query parameter stands for a secret-derived value (a token hash). */
  @Get('db-error')
  async dbError(): Promise<never> {
    await this.dataSource.query('SELECT $1::bigint', [SECRET_PARAMETER]);
    throw new Error('unreachable');
  }

  /** The real error pg-pool gives when no connection frees up in time: a pool of one, held. */
  @Get('pool-exhausted')
  async poolExhausted(): Promise<never> {
    const pool = new Pool({ connectionString: (this.dataSource.options as { url: string }).url, max: 1, connectionTimeoutMillis: 100 });
    const held = await pool.connect();
    try {
      await pool.connect();
      throw new Error('unreachable');
    } finally {
      held.release();
      await pool.end();
    }
  }

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
        code: 'request.invalid',
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
        code: 'request.invalid',
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
        code: 'request.too-large',
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
        code: 'internal',
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
        code: 'auth.forbidden',
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
        code: 'service.unavailable',
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
        code: 'route.not-found',
        message: 'Cannot GET /v1/no-such-thing',
        requestId: expect.any(String),
      });
    });

    it('redacts the query values the router quotes in a 404 (a token sent in the wrong place)', async () => {
      const res = await request(server).get('/v1/no-such-thing?access_token=rks_secretsecret&page=2');
      expect(res.status).toBe(404);
      expect(res.body.message).toBe('Cannot GET /v1/no-such-thing?access_token=[redacted]&page=[redacted]');
      expect(res.text).not.toContain('rks_secretsecret');
    });

    it('answers a wrong method with a 404 in the error shape', async () => {
      const res = await request(server).delete('/test/echo');
      expect(res.status).toBe(404);
      expect(res.body.statusCode).toBe(404);
      expect(res.body.error).toBe('Not Found');
    });
  });

  describe('NUL bytes (issue 9 item 4: PostgreSQL text cannot hold U+0000)', () => {
    it.each([
      ['a body field', () => request(server).post('/test/echo').send({ name: 'a\u0000b', count: 1 }), ['name must not contain NUL bytes']],
      [
        'a nested body field, named by its path',
        () => request(server).post('/test/nested').send({ labels: [{ value: 'ok' }, { value: '\u0000' }] }),
        ['labels.1.value must not contain NUL bytes'],
      ],
      ['a property name', () => request(server).post('/test/echo').send({ 'a\u0000': 1, name: 'x', count: 1 }), ['a property name must not contain NUL bytes']],
      ['a query parameter', () => request(server).get('/test/search?q=a%00b'), ['q must not contain NUL bytes']],
      ['a query parameter a route does not declare', () => request(server).get('/test/search?other=%00'), ['other must not contain NUL bytes']],
      ['a path parameter', () => request(server).get('/test/items/a%00b'), ['name must not contain NUL bytes']],
    ])('refuses one in %s with a 400 naming it', async (_label, send, message) => {
      const res = await send();
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ statusCode: 400, error: 'Bad Request', code: 'request.invalid', message, requestId: expect.any(String) });
    });

    it.each([
      ['a body field', () => request(server).post('/test/echo').set('Content-Type', 'application/json').send('{"name":"a\\ud800b","count":1}'), 'name'],
      ['a body field (low half alone)', () => request(server).post('/test/echo').set('Content-Type', 'application/json').send('{"name":"\\udfffb","count":1}'), 'name'],
      ['a nested body field', () => request(server).post('/test/nested').set('Content-Type', 'application/json').send('{"labels":[{"value":"ok"},{"value":"\\udbff"}]}'), 'labels.1.value'],
      ['a property name', () => request(server).post('/test/echo').set('Content-Type', 'application/json').send('{"\\ud800":1,"name":"x","count":1}'), 'a property name'],
    ])('refuses an unpaired UTF-16 surrogate in %s with a 400 naming it (jsonb refuses one: it was a 500)', async (_label, send, field) => {
      const res = await send();
      expect(res.status).toBe(400);
      expect(res.body).toEqual({
        statusCode: 400,
        error: 'Bad Request',
        code: 'request.invalid',
        message: [`${field} must be well-formed Unicode (it holds an unpaired surrogate)`],
        requestId: expect.any(String),
      });
    });

    it('lets a paired surrogate (an emoji) through', async () => {
      const res = await request(server).post('/test/echo').set('Content-Type', 'application/json').send('{"name":"\\ud83d\\ude00ok","count":1}');
      expect(res.status).toBe(201);
    });

    it('refuses a JSON body whose bytes are not UTF-8 with a 400 instead of storing U+FFFD', async () => {
      for (const bytes of [Buffer.from('{"name":"a\xff\xfeb","count":1}', 'latin1'), Buffer.from('{"name":"a\xc0\x80b","count":1}', 'latin1')]) {
        const res = await request(server).post('/test/echo').set('Content-Type', 'application/json')
          // The bytes as they are (supertest would JSON-encode a Buffer).
          .serialize(() => bytes as unknown as string)
          .send({});
        expect(res.status).toBe(400);
        expect(res.body).toEqual({ statusCode: 400, error: 'Bad Request', code: 'request.invalid', message: 'request body is not valid UTF-8', requestId: expect.any(String) });
      }
    });

    it('lets the same values through without the NUL', async () => {
      expect((await request(server).get('/test/items/ab')).body).toEqual({ name: 'ab' });
      expect((await request(server).get('/test/search?q=ab')).body).toEqual({ q: 'ab' });
    });
  });

  describe('JSON bodies (issue 9 items 5 and 415)', () => {
    const deep = (levels: number, open = '[', close = ']') => `{"name":${open.repeat(levels)}${close.repeat(levels)},"count":1}`;

    it('refuses JSON nested 100,000 deep with a 400 before anything recurses into it', async () => {
      for (const [open, close] of [['[', ']'], ['{"a":', '}']] as const) {
        const res = await request(server).post('/test/echo').set('Content-Type', 'application/json').send(deep(100_000, open, close));
        expect(res.status).toBe(400);
        expect(res.body).toEqual({
          statusCode: 400,
          error: 'Bad Request',
          code: 'request.invalid',
          message: 'request body nests too deep (at most 32 levels of arrays and objects)',
          requestId: expect.any(String),
        });
      }
      expect((await request(server).get('/health/live')).status).toBe(200);
    });

    it('counts only brackets outside strings, so text full of brackets is fine', async () => {
      const res = await request(server).post('/test/echo').send({ name: `[{\\"[`.repeat(3), count: 1 });
      expect(res.status).toBe(201);
      // 31 levels inside the outer object: 32 in all, parsed, then refused by validation as usual.
      const atLimit = await request(server).post('/test/echo').set('Content-Type', 'application/json').send(deep(31));
      expect(atLimit.status).toBe(400);
      expect(atLimit.body.message).toContain('name must be a string');
      const overLimit = await request(server).post('/test/echo').set('Content-Type', 'application/json').send(deep(32));
      expect(overLimit.body.message).toBe('request body nests too deep (at most 32 levels of arrays and objects)');
    });

    it.each([
      ['text/plain', 'hello'],
      ['application/x-www-form-urlencoded', 'name=rack-1&count=3'],
      ['text/csv', 'name,count\nrack-1,3\n'],
    ])('answers 415 naming application/json to a %s body', async (type, body) => {
      const res = await request(server).post('/test/echo').set('Content-Type', type).send(body);
      expect(res.status).toBe(415);
      expect(res.body).toEqual({
        statusCode: 415,
        error: 'Unsupported Media Type',
        code: 'request.unsupported-media-type',
        message: 'send the request body as Content-Type: application/json',
        requestId: expect.any(String),
      });
    });

    it.each(['null', '[]', '[{"name":"a","count":1}]', '"x"', '42', ' \n true'])('refuses the JSON body %j: 400, the request body must be a JSON object', async (body) => {
      const res = await request(server).post('/test/echo').set('Content-Type', 'application/json').send(body);
      expect(res.body).toEqual({ statusCode: 400, error: 'Bad Request', code: 'request.invalid', message: 'the request body must be a JSON object', requestId: expect.any(String) });
    });

    it('answers 415 to a JSON route called without a body or Content-Type', async () => {
      const res = await request(server).post('/test/echo');
      expect(res.status).toBe(415);
      expect(res.body.message).toBe('send the request body as Content-Type: application/json');
    });

    it('refuses JSON that is not UTF-8 (RFC 8259 §8.1) with 415', async () => {
      const res = await request(server)
        .post('/test/echo')
        .set('Content-Type', 'application/json; charset=utf-16le')
        .send(Buffer.from('{"name":"a","count":1}', 'utf16le'));
      expect(res.status).toBe(415);
      expect(res.body.message).toBe('request body charset is not supported');
    });

    it.each([
      ['a form with 2,000 parameters', 'application/x-www-form-urlencoded', Array.from({ length: 2000 }, (_, i) => `a${i}=1`).join('&'), 413, 'request body has too many parameters'],
      ['a form nested 200 deep', 'application/x-www-form-urlencoded', `a${'[b]'.repeat(200)}=1`, 400, 'request body nests too deep'],
    ])('refuses %s while reading it, not with a 500', async (_label, type, body, status, message) => {
      const res = await request(server).post('/test/echo').set('Content-Type', type).send(body);
      expect([res.status, res.body.message]).toEqual([status, message]);
    });

    it('refuses a gzip body that does not decompress with a 400', async () => {
      const res = await request(server).post('/test/echo').set('Content-Type', 'application/json').set('Content-Encoding', 'gzip').send('{"not":"gzip"}');
      expect([res.status, res.body.message]).toEqual([400, 'request body could not be decompressed']);
    });

    it('accepts application/json with parameters', async () => {
      const res = await request(server).post('/test/echo').set('Content-Type', 'Application/JSON; charset=UTF-8').send('{"name":"a","count":1}');
      expect(res.status).toBe(201);
    });
  });

  describe('bounded error bodies (issue 9 item 7)', () => {
    it('keeps the first 20 messages of 150,000 and counts the rest', async () => {
      const res = await request(server).get('/test/many-problems');
      expect(res.status).toBe(400);
      const message = res.body.message as string[];
      expect(message).toHaveLength(21);
      expect(message.slice(0, 2)).toEqual(['column_0 is not a known column', 'column_1 is not a known column']);
      expect(message[20]).toBe('… and 149980 more');
      expect(res.text.length).toBeLessThan(4096);
    });

    it('cuts a message at 500 characters, saying how much was cut', async () => {
      const res = await request(server).get('/test/long-problem');
      expect(res.status).toBe(400);
      expect(res.body.message).toBe(`unknown value ${'x'.repeat(486)}… (99514 more characters)`);
    });
  });

  describe('database errors', () => {
    let logged: unknown[][];
    beforeEach(() => {
      logged = [];
      jest.spyOn(NestLogger.prototype, 'error').mockImplementation((...args: unknown[]) => void logged.push(args));
      jest.spyOn(NestLogger.prototype, 'warn').mockImplementation((...args: unknown[]) => void logged.push(args));
    });
    afterEach(() => jest.restoreAllMocks());

    it('logs a failed query by SQLSTATE and SQL text, never its parameters, message or the URL query', async () => {
      const res = await request(server).get(`/test/db-error?access_token=rks_${SECRET_PARAMETER}`);
      expect(res.status).toBe(500);
      expect(logged).toHaveLength(1);
      const [fields, message] = logged[0] as [Record<string, unknown>, string];
      expect(message).toBe('unhandled error');
      expect(fields).toMatchObject({
        errorId: res.body.errorId,
        url: '/test/db-error?access_token=[redacted]',
        error: { type: 'QueryFailedError', code: '22P02', severity: 'ERROR', query: 'SELECT $1::bigint', stack: expect.stringContaining('    at ') },
      });
      // pg's message quotes the value ('invalid input syntax for type bigint: "…"'); TypeORM keeps `parameters`.
      expect(JSON.stringify(logged)).not.toContain(SECRET_PARAMETER);
    });

    it('answers pool exhaustion (the real pg-pool error) with 503 and Retry-After, not 500', async () => {
      const res = await request(server).get('/test/pool-exhausted');
      expect(res.status).toBe(503);
      expect(res.headers['retry-after']).toBe('2');
      expect(res.body).toEqual({
        statusCode: 503,
        error: 'Service Unavailable',
        code: 'database.unavailable',
        message: 'the database cannot take this request now; retry in 2 seconds',
        requestId: expect.any(String),
      });
      expect(logged).toEqual([[expect.objectContaining({ error: expect.objectContaining({ message: 'timeout exceeded when trying to connect' }) }), 'database unavailable']]);
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
        audit: { status: 'ok', pending: 0, unsigned: 0, lagMs: 0, maxMergeDelayMs: 1000 },
      });
    });
  });

  describe('OpenAPI', () => {
    // Swagger UI's page names its assets relatively; each spelling must resolve them to real files.
    it.each(['/docs', '/docs/', '/docs/index.html', '/docs/?url=x', '/docs?url=x'])('serves Swagger UI at %s with assets that load', async (path) => {
      const res = await request(server).get(path);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.text).toContain('<html');
      const page = new URL(path, 'http://control-plane');
      const stylesheet = /href="([^"]*swagger-ui\.css)"/.exec(res.text)?.[1];
      const init = /src="([^"]*swagger-ui-init\.js)"/.exec(res.text)?.[1];
      expect([stylesheet, init]).toEqual([expect.any(String), expect.any(String)]);
      const css = await request(server).get(new URL(stylesheet!, page).pathname);
      expect([css.status, css.headers['content-type']]).toEqual([200, expect.stringMatching(/^text\/css/)]);
      const js = await request(server).get(new URL(init!, page).pathname);
      expect([js.status, js.headers['content-type']]).toEqual([200, expect.stringMatching(/javascript/)]);
      // Our document, not swagger-ui-dist's Petstore demo.
      expect(js.text).toContain('"title": "rackseal"');
    });

    it('redirects /docs// (where relative assets cannot resolve) to /docs/', async () => {
      const res = await request(server).get('/docs//');
      expect([res.status, res.headers.location]).toEqual([301, '/docs/']);
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
