/**
 * The two-machine fleet of the delivery suites that play the agent's side themselves
 * (test/deliveries.test.ts, test/rotation.test.ts): one swtpm holding an RSA and a P-256 EK,
 * imported into group `workers` and enrolled by an in-process control plane (its attestation hook
 * plans deliveries there), a second control plane as a process (the node mailbox, the CLI's server),
 * worker processes sealing with the test-only TestEnvelopeSealer, and signed node requests to the
 * mailbox. `useMailboxFleet` registers the hooks: started in beforeAll, workers stopped after each
 * case, everything torn down in afterAll.
 */
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { PcrPolicySource } from '@rackseal/attestation';
import { ApiTokens } from '@rackseal/api-tokens';
import { InventoryImporter } from '@rackseal/inventory';
import { DELIVERIES_POLL_ROUTE, DELIVERIES_ROUTE, deliveryAckRoute, nodeApiPath } from '@rackseal/node-api-contracts';
import { type NodeCredential, signNodeRequest } from '@rackseal/node-identity';
import { VendorCas } from '@rackseal/vendor-cas';
import { createRedisConnection, type RedisClient } from '@rackseal/jobs';
import { Queue } from 'bullmq';
import { Logger } from 'nestjs-pino';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { ControlPlaneModule } from '../../apps/control-plane/src/control-plane.module';
import { configureHttpApp } from '../../apps/control-plane/src/http/configure-http-app';
import { FRESH_SWTPM_POLICY, TestPolicies } from './attestation-policies';
import { createTestDatabase, openDataSource, type TestDatabase } from './database';
import { b64, enroll } from './enrollment';
import { jestHooks } from './jest-hooks';
import { type RunningProcess, startControlPlane, startDeliveryWorker } from './processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './redis';
import type { SwtpmFixture } from './swtpm';
import { testConfig, testEnv } from './test-config';

/** What beforeAll made: the services, the control planes, the admin token and the deliveries queue. */
export interface MailboxFleetParts {
  readonly db: TestDatabase;
  readonly prefix: TestQueuePrefix;
  /** The in-process control plane (operator calls through supertest). */
  readonly app: INestApplication;
  /** The control plane as a process: the mailbox the simulated agents poll. */
  readonly cp2: { proc: RunningProcess; baseUrl: string };
  readonly ds: DataSource;
  readonly admin: string;
  readonly queue: Queue;
}

export interface NodeAnswer {
  status: number;
  json: Record<string, unknown>;
}

export class MailboxFleet {
  /** The serials and the EK each enrolls with (both on the one swtpm). */
  static readonly MACHINES = [
    ['SN-RSA', 'rsa-2048'],
    ['SN-P256', 'ecc-p256'],
  ] as const;

  readonly policies = new TestPolicies();
  /** The TestEnvelopeSealer's key: the simulated agents derive their per-machine keys from it. */
  readonly fleetKey = randomBytes(32);
  readonly credential: Record<string, NodeCredential> = {};
  readonly machineId: Record<string, string> = {};
  private readonly workers: RunningProcess[] = [];
  /** Filled in as start() goes, so close() tears down what a failed start made. */
  private readonly made: { -readonly [K in keyof MailboxFleetParts]?: MailboxFleetParts[K] } = {};
  private started: MailboxFleetParts | undefined;
  private queueConnection: RedisClient | undefined;

  /** `env`: variables every process and config of the fleet gets on top of testEnv's (read at start, e.g. a Redis Cluster started by an earlier hook). */
  constructor(
    private readonly fixture: SwtpmFixture,
    private readonly env: () => NodeJS.ProcessEnv = () => ({}),
  ) {}

  get parts(): MailboxFleetParts {
    if (this.started === undefined) {
      throw new Error('MailboxFleet: not started (useMailboxFleet starts it in beforeAll)');
    }
    return this.started;
  }

  async start(): Promise<MailboxFleetParts> {
    const tpm = this.fixture.at(0);
    const ca = this.fixture.ca;
    const made = this.made;
    const db = (made.db = await createTestDatabase());
    const prefix = (made.prefix = createTestQueuePrefix());
    const app = (made.app = await this.startApp(db, prefix));
    made.ds = await openDataSource(db.url);
    this.queueConnection = createRedisConnection(testConfig(db, prefix.prefix, this.env()), 'queue-worker');
    made.queue = new Queue('deliveries', { connection: this.queueConnection, prefix: prefix.keyPrefix });
    const admin = (made.admin = (await app.get(ApiTokens).issue('admin', ['admin'], 'test')).token);
    await app.get(VendorCas).addBundle([{ content: await ca.rootCertPem(), source: 'root' }, { content: await ca.intermediateCertPem(), source: 'intermediate' }], { addedBy: 'test' });
    const csv = ['serial,asset_tag,hostname,group,ek_cert,ek_pub_hash', `SN-RSA,,rsa,workers,${b64(await tpm.rsaEkCertDer())},`, `SN-P256,,p256,workers,${b64(await tpm.p256EkCertDer())},`].join('\n');
    const imported = await app.get(InventoryImporter).import(Readable.from([Buffer.from(`${csv}\n`)]), { actor: 'test', fileName: 'inventory.csv' });
    if (imported.status !== 'succeeded') {
      throw new Error(`MailboxFleet: the inventory import ${imported.status}`);
    }
    this.policies.byGroup.set('workers', FRESH_SWTPM_POLICY);
    for (const [serial, kind] of MailboxFleet.MACHINES) {
      const enrolled = await enroll(app, tpm, kind);
      if (enrolled.status !== 200) {
        throw new Error(`MailboxFleet: ${serial} did not enroll (${enrolled.status} ${JSON.stringify(enrolled.body)})`);
      }
      this.credential[serial] = enrolled.credential;
      this.machineId[serial] = enrolled.body.machineId as string;
    }
    const cp2 = (made.cp2 = await startControlPlane(testEnv(db, prefix.prefix, this.env())));
    this.started = { db, prefix, app, ds: made.ds, queue: made.queue, admin, cp2 };
    return this.started;
  }

  async close(): Promise<void> {
    await this.stopWorkers();
    const made = this.made;
    await made.cp2?.proc.stop('SIGKILL');
    await made.app?.close();
    await made.queue?.close();
    this.queueConnection?.disconnect();
    await made.ds?.destroy();
    await made.db?.drop();
    await made.prefix?.clear();
  }

  /** The control plane in this process, with the test's PCR policies. */
  private async startApp(db: TestDatabase, prefix: TestQueuePrefix): Promise<INestApplication> {
    const moduleRef = await Test.createTestingModule({ imports: [ControlPlaneModule.forRoot(testConfig(db, prefix.prefix, { ...this.env(), LOG_LEVEL: 'silent' }))] })
      .overrideProvider(PcrPolicySource)
      .useValue(this.policies)
      .compile();
    const created = moduleRef.createNestApplication({ bufferLogs: true });
    created.useLogger(created.get(Logger));
    configureHttpApp(created);
    await created.init();
    return created;
  }

  /** A worker process with the test sealer; stopped (SIGKILL) after each case. */
  readonly startWorker = async (extra: NodeJS.ProcessEnv = {}): Promise<RunningProcess> => {
    const proc = await startDeliveryWorker(testEnv(this.parts.db, this.parts.prefix.prefix, { ...this.env(), ...extra }), this.fleetKey);
    this.workers.push(proc);
    return proc;
  };

  readonly stopWorkers = async (): Promise<void> => {
    await Promise.all(this.workers.splice(0).map((w) => w.stop('SIGKILL')));
  };

  /** The workers started and not stopped yet. */
  get runningWorkers(): readonly RunningProcess[] {
    return this.workers;
  }

  /** An operator call to the in-process control plane with the admin token. */
  readonly operator = (method: 'get' | 'post' | 'put', path: string) => request(this.parts.app.getHttpServer())[method](path).set('Authorization', `Bearer ${this.parts.admin}`);

  /** A node request to the control-plane process, signed with `as`'s credential (default: the machine's own). */
  readonly node = async (serial: string, method: 'GET' | 'POST', path: string, body?: unknown, as = serial): Promise<NodeAnswer> => {
    const bytes = body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body));
    const headers = signNodeRequest({ credential: this.credential[as]!, method, path, body: bytes, now: new Date(), nonce: randomBytes(16) });
    const response = await fetch(`${this.parts.cp2.baseUrl}${path}`, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : bytes,
    });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  };

  /** The mailbox's long poll (`wait` seconds). */
  readonly poll = (serial: string, wait = 0): Promise<NodeAnswer> => this.node(serial, 'GET', `${nodeApiPath(DELIVERIES_ROUTE)}?wait=${wait}`);

  /** The poll that carries acks (`body` sent as it is: a test may send a malformed one), `wait` seconds. */
  readonly pollCarrying = (serial: string, body: unknown, wait = 0, as = serial): Promise<NodeAnswer> =>
    this.node(serial, 'POST', `${nodeApiPath(DELIVERIES_POLL_ROUTE)}?wait=${wait}`, body, as);

  /** An ack with `proof` (bytes, or a string sent as it is). */
  readonly ack = (serial: string, id: string, proof: Buffer | string, as = serial): Promise<NodeAnswer> =>
    this.node(serial, 'POST', nodeApiPath(deliveryAckRoute(id)), { proof: typeof proof === 'string' ? proof : proof.toString('base64') }, as);
}

/** A MailboxFleet on `fixture`'s first swtpm (started with `{ p256: true }`), with its jest hooks registered. */
export function useMailboxFleet(fixture: SwtpmFixture, env?: () => NodeJS.ProcessEnv): MailboxFleet {
  const hooks = jestHooks('useMailboxFleet');
  const fleet = new MailboxFleet(fixture, env);
  hooks.beforeAll(() => fleet.start(), 240_000);
  hooks.afterAll(() => fleet.close());
  hooks.afterEach(() => fleet.stopWorkers());
  return fleet;
}
