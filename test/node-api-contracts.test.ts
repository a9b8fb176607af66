/**
 * Issue 10 item 3: the node API (agent ↔ control plane) has its own contract library,
 * @rackseal/node-api-contracts, that the agent can load at boot: as built, it loads its own files
 * and nothing else (no NestJS, TypeORM, class-validator or any other package, no other rackseal
 * library). The operator API's contract (@rackseal/api-contracts, which the CLI loads) is held to the
 * same. That ESLint refuses a NestJS import there and lets apps/agent import it is in
 * test/lint-boundaries.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { NODE_API_BASE_PATH } from '@rackseal/node-api-contracts';
import { repoRoot } from './support/repo-root';

const ROOT = repoRoot();

/** Requires a built module in a fresh node and answers the module's exports' names and every file it loaded. */
function load(entry: string): { exports: string[]; loaded: string[] } {
  const script = `const m = require(${JSON.stringify(entry)}); process.stdout.write(JSON.stringify({ exports: Object.keys(m).sort(), loaded: Object.keys(require.cache) }));`;
  const run = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8' });
  if (run.status !== 0) {
    throw new Error(`node exited with ${String(run.status ?? run.signal)}:\n${run.stderr}`);
  }
  const result = JSON.parse(run.stdout) as { exports: string[]; loaded: string[] };
  return { exports: result.exports, loaded: result.loaded.map((path) => relative(ROOT, path)) };
}

describe.each([
  ['@rackseal/node-api-contracts', 'dist/libs/node-api-contracts/src/index.js', 'dist/libs/node-api-contracts/'],
  ['@rackseal/api-contracts', 'dist/libs/api-contracts/src/index.js', 'dist/libs/api-contracts/'],
])('%s as built', (_name, entry, own) => {
  it('loads its own files and nothing else: no framework, validator, database client or other rackseal library', () => {
    expect(existsSync(join(ROOT, entry))).toBe(true);
    const { loaded } = load(join(ROOT, entry));
    expect(loaded.length).toBeGreaterThan(0);
    expect(loaded.filter((path) => !path.startsWith(own))).toEqual([]);
  });
});

describe('the node API contract', () => {
  it('exports the versioned base path the agent and the control plane share', () => {
    const { exports } = load(join(ROOT, 'dist/libs/node-api-contracts/src/index.js'));
    expect(exports).toEqual([
      'ACK_PROOF_BYTES',
      'APPROVALS_ROUTE',
      'ATTESTATIONS_ROUTE',
      'ATTESTATION_LIMITS',
      'CERTIFIED_KEY_ALGORITHMS',
      'CURRENT_KEY_ROUTE',
      'DELIVERIES_POLL_ROUTE',
      'DELIVERIES_ROUTE',
      'DELIVERY_PAYLOAD_FORMAT',
      'DELIVERY_PAYLOAD_KINDS',
      'DELIVERY_PAYLOAD_LIMITS',
      'DeliveryPayloadError',
      'FINISH_ATTESTATION_BODY_LIMIT_BYTES',
      'IMA_TEMPLATE_HASH_ALGORITHMS',
      'KEYS_ROUTE',
      'KEY_CERTIFICATION_LIMITS',
      'KEY_CHALLENGES_ROUTE',
      'MAILBOX_MAX_CARRIED_ACKS',
      'MAILBOX_MAX_DELIVERIES',
      'MAILBOX_MAX_WAIT_SECONDS',
      'MailboxResponseError',
      'NODE_API_BASE_PATH',
      'NODE_API_VERSION',
      'NODE_REQUEST_REFUSAL_CODES',
      'PREWRAPPED_DISK_KEY_TYPE',
      'PrewrappedDiskKeyError',
      'SELF_ROUTE',
      'deliveryAckRoute',
      'encodeDeliveryPayload',
      'finishAttestationRoute',
      'isImaTemplateHashAlgorithm',
      'nodeApiPath',
      'parseDeliveryPayload',
      'parseMailboxPollResponse',
      'parseMailboxResponse',
      'parsePrewrappedDiskKey',
    ]);
    expect(NODE_API_BASE_PATH).toBe('/node/v1');
  });

  it('is apart from the operator API: the node routes of openapi.json are the enrollment calls, the signed self call, the key certification calls, the PCR approvals and the mailbox, under the node API base path', () => {
    const { paths } = JSON.parse(readFileSync(join(ROOT, 'openapi.json'), 'utf8')) as { paths: Record<string, unknown> };
    expect(Object.keys(paths).filter((path) => path.startsWith(NODE_API_BASE_PATH))).toEqual([
      `${NODE_API_BASE_PATH}/attestations`,
      `${NODE_API_BASE_PATH}/attestations/{id}/finish`,
      `${NODE_API_BASE_PATH}/self`,
      `${NODE_API_BASE_PATH}/keys/challenges`,
      `${NODE_API_BASE_PATH}/keys`,
      `${NODE_API_BASE_PATH}/keys/current`,
      `${NODE_API_BASE_PATH}/approvals`,
      `${NODE_API_BASE_PATH}/deliveries`,
      `${NODE_API_BASE_PATH}/deliveries/poll`,
      `${NODE_API_BASE_PATH}/deliveries/{id}/ack`,
    ]);
    expect(Object.keys(paths).filter((path) => !path.startsWith(NODE_API_BASE_PATH) && path.includes('attestations'))).toEqual([]);
  });
});
