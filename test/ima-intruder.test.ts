/**
 * An intruder's pass over runtime integrity (issue 17), against the in-process control plane, a real
 * PostgreSQL and a swtpm whose PCR 10 is extended entry by entry as IMA does (as
 * test/ima-attestation.test.ts): what a hostile operator document, a hostile machine's list and racing
 * operators get. Each refusal is a 4xx with its code (or a judged runtime failure: quarantine, audit
 * record, verdict), never a 500, and leaves the stored state consistent.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { RUNTIME_POLICY_BODY_LIMIT_BYTES } from '@rackseal/api-contracts';
import {
  attestImaMeasurements,
  buildImaEntry,
  entryExtend,
  EXCLUDE_ROUND_VISITS,
  ExcludeMatcher,
  type ImaBank,
  type ImaEntry,
  ImaParseError,
  initialImaState,
  marshalBinaryEntry,
  parseAsciiMeasurementList,
  parseBinaryMeasurementList,
  parseRuntimePolicy,
  pathHash,
  replayImaEntries,
  zeroPcr,
} from '@rackseal/ima';
import { type FinishAttestationRequest, nodeApiPath, type StartAttestationResponse } from '@rackseal/node-api-contracts';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { answer, b64, withAgent } from './support/attestation-agent';
import { runRacksealCliAsync } from './support/cli-runner';
import { fixturePath } from './support/fixtures';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { type ImaRack, startImaRack } from './support/ima-rack';

jest.setTimeout(180_000);

const START = nodeApiPath('attestations');
const finishPath = (id: string) => nodeApiPath(`attestations/${id}/finish`);
const sha256 = (text: string) => createHash('sha256').update(text).digest();
const file = (path: string, content = `content of ${path}`): ImaEntry => buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha256(content), name: path });
const hex = (e: ImaEntry) => e.digest.digest.toString('hex');
const indexed = (entries: readonly ImaEntry[]): ImaEntry[] => entries.map((e, i) => ({ ...e, index: i }));
const binary = (entries: readonly ImaEntry[]): Buffer => Buffer.concat(entries.map(marshalBinaryEntry));
const D = 'ab'.repeat(32);

/** A path of `n` characters after `/`, a and b drawn from a fixed sequence (an LCG: the same path every run). */
function abPath(n: number, seed: number): string {
  let s = seed;
  let out = '/';
  for (let i = 0; i < n; i += 1) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    out += (s >> 16) & 1 ? 'a' : 'b';
  }
  return out;
}

describe('exclude matching: the cost of a pattern is bounded, counted rather than timed', () => {
  it('(.*){1000}\\x01 thirty-three times (100,000 NFA states, all live on every character) builds a handful of states, and costs nothing more per path', () => {
    const matcher = ExcludeMatcher.compile(Array<string>(33).fill('(.*){1000}\\x01'));
    const path = abPath(4095, 1);
    expect(matcher.match(path)).toBeUndefined();
    const first = matcher.cost;
    // The NFA simulation alone visited ~100,000 states per character here: 400 million for this path.
    expect(first.dfaStates).toBeLessThanOrEqual(3);
    expect(first.nfaVisits).toBeLessThan(400_000);
    for (let seed = 2; seed < 50; seed += 1) {
      expect(matcher.match(abPath(4095, seed))).toBeUndefined();
    }
    expect(matcher.cost).toEqual(first);
    // And the answers are the same where it does match.
    expect(matcher.match(`${path}\x01`)).toBe(0);
  });

  it('a pattern whose DFA is exponential (.*a.{1000}) spends the round\'s budget and stops there: the round fails instead of stalling', () => {
    const policy = parseRuntimePolicy({ meta: { version: 1 }, excludes: ['.*a.{1000}\\x01'] });
    const budget = { nfaVisits: EXCLUDE_ROUND_VISITS };
    let thrown: unknown;
    let paths = 0;
    try {
      for (let seed = 1; seed < 1000; seed += 1, paths += 1) {
        policy.excludeMatcher.match(abPath(4095, seed), budget);
      }
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ name: 'ExcludeBudgetError' });
    expect(paths).toBeLessThan(10);
    // Spent, give or take the one state that crossed the line.
    expect(budget.nfaVisits).toBeLessThan(0);
    expect(budget.nfaVisits).toBeGreaterThan(-10_000);
  });
});

describe('a key measured onto a keyring again and again', () => {
  it('is learned once (per keyring and key), in one round and across rounds: the stored state does not grow with the list', () => {
    const [keyEntry] = parseAsciiMeasurementList(readFileSync(fixturePath('ima', 'keylime-keyrings.txt')));
    const policy = parseRuntimePolicy(readFileSync(fixturePath('ima', 'keylime-runtime-policy-test.json')));
    const again = (n: number, from: number) => Array.from({ length: n }, (_, i) => ({ ...keyEntry!, index: from + i }));
    const first = again(5, 0);
    const round1 = attestImaMeasurements(undefined, { bank: 'sha1', bootTime: 'k', startIndex: 0, entries: first, quotedPcr10: replayImaEntries(first, zeroPcr('sha1'), undefined, { bank: 'sha1' }).final }, policy);
    expect(round1.verdicts.map((v) => v.kind)).toEqual(['allowed', 'allowed', 'allowed', 'allowed', 'allowed']);
    expect(round1.state.learnedKeys).toHaveLength(1);
    const more = again(3, 5);
    const round2 = attestImaMeasurements(
      round1.state,
      { bank: 'sha1', bootTime: 'k', startIndex: 5, entries: more, quotedPcr10: replayImaEntries(more, Buffer.from(round1.state.pcr10, 'hex'), undefined, { bank: 'sha1' }).final },
      policy,
    );
    expect(round2.outcome).toBe('verified');
    expect(round2.state.learnedKeys).toEqual(round1.state.learnedKeys);
  });
});

describe('runtime integrity under attack (issue 17)', () => {
  const fixture = useSwtpms(1);
  let app: INestApplication;
  let ds: DataSource;
  let tpm: SwtpmMachine;
  let rack: ImaRack<'policyWrite' | 'policyRead'>;
  let tokens: ImaRack<'policyWrite' | 'policyRead'>['tokens'];

  beforeAll(async () => {
    tpm = fixture.at(0);
    rack = await startImaRack(fixture, { policyWrite: 'policy:write', policyRead: 'policy:read' });
    ({ app, ds, tokens } = rack);
  }, 180_000);

  afterAll(async () => {
    await rack?.close();
  });

  const http = (method: 'get' | 'put' | 'post' | 'delete', path: string, token = tokens.admin) => rack.http(method, path, token);
  const post = (path: string, body: unknown) => request(app.getHttpServer()).post(path).set('Content-Type', 'application/json').send(body as object);
  const audits = async (action: string) =>
    (await ds.query('SELECT outcome, details FROM audit_log WHERE action = $1 ORDER BY id', [action])) as { outcome: string; details: Record<string, unknown> }[];
  const machineState = async () => ((await ds.query("SELECT state FROM machines WHERE serial = 'SN-IMA'")) as { state: string }[])[0]!.state;
  const imaRow = async () =>
    ((await ds.query("SELECT s.state, s.verdict FROM machine_ima_states s JOIN machines m ON m.id = s.machine_id WHERE m.serial = 'SN-IMA'")) as {
      state: { nextEntry: number; bootTime: string | null };
      verdict: { decision: string; registrationId: string; reason?: string; failureCount: number; failures: unknown[] } | null;
    }[])[0];

  async function setPolicy(policy: unknown, mode: 'enforce' | 'warn' = 'enforce'): Promise<request.Response> {
    const response = await http('put', '/v1/groups/racks/runtime-policy', tokens.policyWrite).send({ policy, mode });
    expect(response.status).toBe(200);
    return response;
  }

  async function bootMeasuring(entries: readonly ImaEntry[]): Promise<void> {
    await tpm.reboot();
    for (const entry of entries) {
      await tpm.extendPcr(10, 'sha256', entryExtend(entry, { bank: 'sha256' }).extend.toString('hex'));
    }
  }

  /** Start, quote what is asked, finish with `ima` (default: the list from the asked entry on). */
  async function attest(list: readonly ImaEntry[], send?: (start: StartAttestationResponse) => unknown): Promise<{ start: StartAttestationResponse; response: request.Response }> {
    return withAgent(tpm, 'rsa-2048', async (agent) => {
      const started = await post(START, { ekCertificate: b64(agent.certificate), akPublic: agent.akPublic });
      expect(started.status).toBe(201);
      const start = started.body as StartAttestationResponse;
      const { body } = await answer(agent, start);
      const from = start.ima?.fromEntry ?? 0;
      const ima = send === undefined ? { firstEntry: from, entries: b64(binary(indexed(list).slice(from))) } : send(start);
      const response = await post(finishPath(start.registrationId), { ...body, ...(ima === undefined ? {} : { ima }) });
      return { start, response };
    });
  }

  describe('the runtime-policy routes', () => {
    const meta = { version: 1 };
    it.each([
      ['a NUL in a path', { meta, digests: { '/usr/\u0000bin': [D] } }, 'request.invalid', 'a property name in policy.digests must not contain NUL bytes'],
      ['digests an array', { meta, digests: [] }, 'policy.invalid', 'runtime policy digests: must be an object'],
      ['digests a string', { meta, digests: 'x' }, 'policy.invalid', 'runtime policy digests: must be an object'],
      ['a digest not hex', { meta, digests: { '/a': ['zz'] } }, 'policy.invalid', 'runtime policy digests["/a"]: "zz" is not a lowercase hex digest'],
      ['a digest in capitals', { meta, digests: { '/a': [D.toUpperCase()] } }, 'policy.invalid', 'is not a lowercase hex digest'],
      ['a digest a number', { meta, digests: { '/a': [1] } }, 'policy.invalid', 'runtime policy digests["/a"]: 1 is not'],
      ['a digest list an object', { meta, digests: { '/a': { x: 1 } } }, 'policy.invalid', 'must be a list of 1..1024 hex digests'],
      ['excludes an object', { meta, excludes: {} }, 'policy.invalid', 'runtime policy excludes: must be an array of strings'],
      ['an exclude a number', { meta, excludes: [1] }, 'policy.invalid', 'runtime policy excludes[0]: must be a string'],
      ['an unterminated group', { meta, excludes: ['('] }, 'policy.invalid', 'missing ), unterminated subpattern'],
      ['an empty exclude', { meta, excludes: [''] }, 'policy.invalid', 'it would exclude everything'],
      ['a backreference', { meta, excludes: ['(a)\\1'] }, 'policy.invalid', 'backreferences are not supported'],
      ['a counted repetition past 100,000 states', { meta, excludes: ['(.{0,1000}){0,1000}'] }, 'policy.invalid', 'more than 100000 states'],
      ['verification-keys garbage', { meta, 'verification-keys': 'garbage' }, 'policy.invalid', 'runtime policy verification-keys: not JSON'],
      ['verification-keys an object', { meta, 'verification-keys': {} }, 'policy.invalid', 'must be a string (a JSON-encoded keyring, or empty)'],
      ['a public key that is not DER', { meta, 'verification-keys': JSON.stringify({ pubkeys: ['AAAA'] }) }, 'policy.invalid', 'pubkeys[0]: not a DER SubjectPublicKeyInfo'],
      ['key ids that are not numbers', { meta, 'verification-keys': JSON.stringify({ pubkeys: [], keyids: ['x'] }) }, 'policy.invalid', 'keyids: must be a list of 32-bit key ids'],
      ['meta.version a string', { meta: { version: '1' } }, 'policy.invalid', 'meta.version: must be 1'],
      ['an unknown hash algorithm', { meta, ima: { log_hash_alg: 'md5' } }, 'policy.invalid', 'ima.log_hash_alg: must be one of'],
      ['the document an array', [], 'request.invalid', 'policy must be an object'],
    ])('%s: 400 %s naming it, nothing written', async (_name, policy, code, message) => {
      const refused = await http('put', '/v1/groups/hostile/runtime-policy', tokens.policyWrite).send({ policy });
      expect([refused.status, refused.body.code]).toEqual([400, code]);
      expect(JSON.stringify(refused.body.message)).toContain(JSON.stringify(message).slice(1, -1));
      expect((await http('get', '/v1/groups/hostile/runtime-policy', tokens.policyRead)).status).toBe(404);
    });

    it('nesting past 32 levels (400), 100,001 paths with bidi and escape characters (kept as data, counted)', async () => {
      const deep = await request(app.getHttpServer())
        .put('/v1/groups/hostile/runtime-policy')
        .set('Authorization', `Bearer ${tokens.policyWrite}`)
        .set('Content-Type', 'application/json')
        .send(`{"policy": {"meta": {"version": 1}, "digests": ${'['.repeat(40)}${']'.repeat(40)}}}`);
      expect([deep.status, deep.body.code]).toEqual([400, 'request.invalid']);
      const digests: Record<string, string[]> = { '/usr/bin/\u202eevil\u001b[31m': [D] };
      for (let i = 0; i < 100_000; i += 1) {
        digests[`/usr/lib/file-${i}`] = [D];
      }
      const set = await http('put', '/v1/groups/hostile/runtime-policy', tokens.policyWrite).send({ policy: { meta, digests } });
      expect([set.status, set.body.paths]).toEqual([200, 100_001]);
      expect(set.body.policy.digests['/usr/bin/\u202eevil\u001b[31m']).toEqual([D]);
      expect((await http('delete', '/v1/groups/hostile/runtime-policy', tokens.policyWrite)).status).toBe(200);
    });

    it.each(['__proto__', 'constructor', 'prototype'])('a policy naming a file %s is refused 400 naming it, not stored without it', async (name) => {
      const body = `{"policy": {"meta": {"version": 1}, "digests": {"/usr/bin/a": ["${D}"], "${name}": ["${D}"]}}}`;
      const refused = await request(app.getHttpServer()).put('/v1/groups/protos/runtime-policy').set('Authorization', `Bearer ${tokens.policyWrite}`).set('Content-Type', 'application/json').send(body);
      expect([refused.status, refused.body.code]).toEqual([400, 'request.invalid']);
      expect(JSON.stringify(refused.body.message)).toContain(`policy.digests must not be \\"${name}\\"`);
      // Nothing written: no policy for the group (it was stored without the file before).
      expect((await http('get', '/v1/groups/protos/runtime-policy', tokens.policyRead)).status).toBe(404);
    });

    it('without policy:write (set, from-machine, remove): 403 audited with the scope wanted, nothing written; a body over the limit 413, unread without a token', async () => {
      for (const [method, path, body] of [
        ['put', '/v1/groups/scoped/runtime-policy', { policy: { meta: { version: 1 } } }],
        ['post', '/v1/groups/scoped/runtime-policy/from-machine', { machine: 'SN-IMA' }],
        ['delete', '/v1/groups/scoped/runtime-policy', undefined],
      ] as const) {
        const refused = await http(method, path, tokens.policyRead).send(body);
        expect([refused.status, refused.body.code]).toEqual([403, 'auth.forbidden']);
        expect((await audits('auth.refused')).at(-1)).toMatchObject({ outcome: 'refused', details: expect.objectContaining({ reason: 'forbidden', scope: 'policy:write', path }) });
      }
      expect((await http('get', '/v1/groups/scoped/runtime-policy', tokens.policyRead)).status).toBe(404);
      const huge = `{"policy": {"meta": {"version": 1}, "digests": {"/a": ["${'a'.repeat(RUNTIME_POLICY_BODY_LIMIT_BYTES)}"]}}}`;
      const tooLarge = await request(app.getHttpServer()).put('/v1/groups/scoped/runtime-policy').set('Authorization', `Bearer ${tokens.policyWrite}`).set('Content-Type', 'application/json').send(huge);
      expect([tooLarge.status, tooLarge.body.code]).toEqual([413, 'request.too-large']);
      const anonymous = await request(app.getHttpServer()).put('/v1/groups/scoped/runtime-policy').set('Content-Type', 'application/json').send(huge);
      expect([anonymous.status, anonymous.body.code]).toEqual([401, 'auth.unauthenticated']);
      expect((await http('get', '/v1/groups/scoped/runtime-policy', tokens.policyRead)).status).toBe(404);
    });

    it('racing removes: one removes and audits, the others are told there is none (404), nothing audited twice', async () => {
      const set = await http('put', '/v1/groups/race/runtime-policy', tokens.policyWrite).send({ policy: { meta: { version: 1 } } });
      expect(set.status).toBe(200);
      const before = (await audits('policy.runtime-removed')).length;
      const answers = await Promise.all(Array.from({ length: 6 }, () => http('delete', '/v1/groups/race/runtime-policy', tokens.policyWrite)));
      expect(answers.map((a) => a.status).sort()).toEqual([200, 404, 404, 404, 404, 404]);
      expect(answers.filter((a) => a.status === 404).every((a) => a.body.code === 'policy.not-found')).toBe(true);
      const removed = (await audits('policy.runtime-removed')).slice(before);
      expect(removed).toEqual([expect.objectContaining({ outcome: 'success', details: { group: 'race', sha256: set.body.sha256 } })]);
    });

    it('racing sets: every record names the policy it replaced, a chain from the first to the one stored', async () => {
      const before = (await audits('policy.runtime-set')).length;
      const answers = await Promise.all(
        Array.from({ length: 6 }, (_, i) => http('put', '/v1/groups/race2/runtime-policy', tokens.policyWrite).send({ policy: { meta: { version: 1 }, release: i } })),
      );
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
      const records = (await audits('policy.runtime-set')).slice(before).map((r) => r.details as { sha256: string; previousSha256: string | null });
      expect(records).toHaveLength(6);
      // Applied one after the other: each names the previous one's digest.
      expect(records[0]!.previousSha256).toBeNull();
      for (let i = 1; i < records.length; i += 1) {
        expect(records[i]!.previousSha256).toBe(records[i - 1]!.sha256);
      }
      expect((await http('get', '/v1/groups/race2/runtime-policy', tokens.policyRead)).body.sha256).toBe(records[5]!.sha256);
    });
  });

  describe('--from-machine: what a hostile canary feeds lands in the policy as data', () => {
    const markup = '/srv/<script>alert(1)</script>&amp;';
    const control = '/tmp2/\x1b[2J\u202eevil\n';
    const long = `/opt/${'x'.repeat(4090)}`;
    const list = [file('boot_aggregate', 'aggregate'), file(markup), file(control), file(long), file('__proto__')];

    it('markup, control characters, a 4 KiB name and __proto__ are kept verbatim; the capture refused when the server kept too little (409, audited)', async () => {
      await setPolicy({ meta: { version: 1 }, excludes: ['.*'] }, 'warn');
      await bootMeasuring(indexed(list));
      expect((await attest(list, () => ({ firstEntry: 0, entries: b64(binary(indexed(list))) }))).response.body.ima).toMatchObject({ decision: 'pass', entriesChecked: 5 });
      const captured = await http('post', '/v1/groups/racks/runtime-policy/from-machine', tokens.policyWrite).send({ machine: 'SN-IMA', mode: 'warn' });
      expect(captured.status).toBe(200);
      const digests = captured.body.policy.digests as Record<string, string[]>;
      expect(Object.keys(digests).sort()).toEqual(['__proto__', 'boot_aggregate', control, long, markup].sort());
      expect(digests[long]).toEqual([hex(list[3]!)]);
      const shown = await http('get', '/v1/groups/racks/runtime-policy', tokens.policyRead);
      expect(Object.keys(shown.body.policy.digests as object)).toHaveLength(5);
      // The machine's list attests against what it fed.
      expect((await attest(list)).response.body.ima).toMatchObject({ decision: 'pass' });

      // A canary whose rounds the server kept only in part (100,000 digests or 32 MiB of them) makes no policy.
      await ds.query("UPDATE machine_ima_observed SET truncated = true WHERE machine_id = (SELECT id FROM machines WHERE serial = 'SN-IMA')");
      const incomplete = await http('post', '/v1/groups/racks/runtime-policy/from-machine', tokens.policyWrite).send({ machine: 'SN-IMA' });
      expect([incomplete.status, incomplete.body.code]).toEqual([409, 'policy.runtime-capture-incomplete']);
      expect((await audits('policy.runtime-set')).at(-1)).toMatchObject({ outcome: 'refused', details: expect.objectContaining({ code: 'policy.runtime-capture-incomplete', serial: 'SN-IMA' }) });
      expect((await http('get', '/v1/groups/racks/runtime-policy', tokens.policyRead)).body.sha256).toBe(captured.body.sha256);
    });
  });

  describe('rackseal policy runtime set --file: what the operator\'s file is', () => {
    let dir: string;
    let baseUrl: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'rackseal-ima-intruder-'));
      const server = app.getHttpServer() as import('node:http').Server;
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });
    const set = (path: string) => runRacksealCliAsync(['policy', 'runtime', 'set', 'cli', '--file', path], { env: { RACKSEAL_SERVER: baseUrl, RACKSEAL_TOKEN: tokens.policyWrite } });

    it('a missing file, a directory, 50 MB of blanks, text with terminal escapes, a JSON array: exit 2 with one line naming it, nothing set', async () => {
      await writeFile(join(dir, 'blanks.json'), Buffer.alloc(50 * 1024 * 1024, 0x20));
      await writeFile(join(dir, 'escapes.json'), 'not json \x1b[2J\x1b]0;owned\x07\u202e');
      await writeFile(join(dir, 'array.json'), '[{"meta": {"version": 1}}]');
      const runs = await Promise.all(['missing.json', '.', 'blanks.json', 'escapes.json', 'array.json'].map((name) => set(join(dir, name))));
      expect(runs.map((r) => r.status)).toEqual([2, 2, 2, 2, 2]);
      const [missing, directory, blanks, escapes, array] = runs.map((r) => r.stderr);
      expect(missing).toBe(`rackseal: cannot read --file ${JSON.stringify(join(dir, 'missing.json'))}: ENOENT\n`);
      expect(directory).toBe(`rackseal: cannot read --file ${JSON.stringify(join(dir, '.'))}: EISDIR\n`);
      expect(blanks).toBe(`rackseal: policy runtime set: --file ${join(dir, 'blanks.json')} is not JSON: Unexpected end of JSON input\n`);
      // The parser quotes the file's first characters: escaped, so the file cannot clear the operator's screen.
      expect(escapes).toMatch(/^rackseal: policy runtime set: --file \S+ is not JSON: .*\\x1b\[.*\n$/);
      expect([...escapes!.slice(0, -1)].filter((c) => c < " " || c === "\u202e")).toEqual([]);
      expect(array).toBe('rackseal: policy runtime set: policy must be an object\n');
      expect((await http('get', '/v1/groups/cli/runtime-policy', tokens.policyRead)).status).toBe(404);
    });

    it('show --json of a policy whose paths hold a bidi override, a C1 CSI and a line separator: none of them raw on the terminal, each a \\u escape, the same document parsed back', async () => {
      const hostile = { meta: { version: 1 }, digests: { '/usr/bin/evil\u202egnp.exe': [D], '/opt/\u009b2J\u009b0;0H': [D], '/etc/cron\u2028.d/x': [D] }, excludes: ['/tmp/\u202e.*'] };
      await writeFile(join(dir, 'hostile.json'), JSON.stringify(hostile));
      expect((await set(join(dir, 'hostile.json'))).status).toBe(0);
      const shown = await runRacksealCliAsync(['policy', 'runtime', 'show', 'cli', '--json'], { env: { RACKSEAL_SERVER: baseUrl, RACKSEAL_TOKEN: tokens.policyRead } });
      expect([shown.status, shown.stderr]).toEqual([0, '']);
      // Everything else in this policy is ASCII: so is the whole output, byte for byte, once escaped.
      expect(shown.stdout).toMatch(/^[\x20-\x7e]+\n$/);
      const bytes = Buffer.from(shown.stdout, 'utf8');
      for (const raw of ['\u202e', '\u009b', '\u2028']) {
        expect(bytes.includes(Buffer.from(raw, 'utf8'))).toBe(false);
      }
      for (const escaped of ['evil\\u202egnp.exe', '/opt/\\u009b2J\\u009b0;0H', '/etc/cron\\u2028.d/x', '/tmp/\\u202e.*']) {
        expect(shown.stdout).toContain(escaped);
      }
      const stored = await http('get', '/v1/groups/cli/runtime-policy', tokens.policyRead);
      expect(JSON.parse(shown.stdout)).toEqual(stored.body);
      expect(stored.body.policy).toEqual(hostile);
    });
  });

  describe('a hostile list at the finish', () => {
    const BASE = [file('boot_aggregate', 'aggregate'), file('/usr/bin/bash'), file('/usr/sbin/sshd')];
    const POLICY = { meta: { version: 1 }, digests: Object.fromEntries(BASE.map((e) => [e.path, [hex(e)]])), excludes: ['/tmp/.*'] };

    it('an exclude whose matcher blows up against the paths the machine feeds it: the round fails (quarantine, reason, audit, verdict), the control plane does not stall', async () => {
      await setPolicy({ ...POLICY, excludes: ['.*a.{1000}\\x01'] });
      const list = [...BASE, ...Array.from({ length: 4 }, (_, i) => file(abPath(4000, i + 1)))];
      await bootMeasuring(indexed(list));
      const { start, response } = await attest(list, () => ({ firstEntry: 0, entries: b64(binary(indexed(list))) }));
      expect([response.status, response.body.code]).toEqual([409, 'attestation.runtime-policy-violation']);
      expect(JSON.stringify(response.body.message)).toContain("simplify the runtime policy's excludes");
      expect(await machineState()).toBe('quarantined');
      const row = await imaRow();
      expect(row!.state).toMatchObject({ nextEntry: 0, bootTime: null });
      expect(row!.verdict).toMatchObject({ decision: 'fail', registrationId: start.registrationId, reason: expect.stringContaining('NFA steps') });
      const [refusal] = (await audits('attestation.refused')).slice(-1);
      expect(refusal).toMatchObject({ details: expect.objectContaining({ code: 'attestation.runtime-policy-violation', ima: expect.objectContaining({ decision: 'fail' }) }) });
    });

    it.each([
      ['entries a number', { firstEntry: 0, entries: 12 }],
      ['entries an object', { firstEntry: 0, entries: { a: 1 } }],
      ['entries an array', { firstEntry: 0, entries: ['AAAA'] }],
      ['entries with a newline', { firstEntry: 0, entries: 'AAAA\nAAAA' }],
      ['entries padding only', { firstEntry: 0, entries: '====' }],
      ['entries one character', { firstEntry: 0, entries: 'A' }],
      ['firstEntry a string', { firstEntry: '0', entries: '' }],
      ['firstEntry beyond 2^53', { firstEntry: 2 ** 60, entries: '' }],
      ['firstEntry null', { firstEntry: null, entries: '' }],
      ['ima an array', []],
      ['ima a string', 'entries'],
    ])('%s: 400 request.invalid naming the field, nothing decided', async (_name, ima) => {
      await setPolicy(POLICY);
      const before = await imaRow();
      const { response } = await attest(BASE, () => ima);
      expect([response.status, response.body.code]).toEqual([400, 'request.invalid']);
      expect(JSON.stringify(response.body.message)).toContain('ima');
      expect(await imaRow()).toEqual(before);
    });

    it('a window of 4 MiB (half what the agent may send) is judged, not a 500: the base64 check no longer recurses per 4 characters', async () => {
      await setPolicy(POLICY);
      const chunk = Buffer.alloc(1024 * 1024 - 200, 9);
      const bigOnes = Array.from({ length: 4 }, (_, i) =>
        buildImaEntry({ template: 'ima-buf', algorithm: 'sha256', digest: createHash('sha256').update(chunk).digest(), name: `blob-${i}`, buffer: chunk }),
      );
      const list = [...BASE, ...bigOnes];
      await bootMeasuring(indexed(list));
      const { response } = await attest(list, () => ({ firstEntry: 0, entries: b64(binary(indexed(list))) }));
      expect([response.status, response.body.code]).toEqual([409, 'attestation.runtime-policy-violation']);
      expect(JSON.stringify(response.body.message)).toContain('entry 6 blob-3');
      expect((await imaRow())!.verdict).toMatchObject({ decision: 'fail', entriesChecked: 7, failureCount: 4 });
    });

    it('entries over 8 MiB: refused before anything is decided (400 or 413), never a 500', async () => {
      await setPolicy(POLICY);
      const before = await imaRow();
      const { response } = await attest(BASE, () => ({ firstEntry: 0, entries: 'A'.repeat(Math.ceil((8 * 1024 * 1024 + 3) / 3) * 4) }));
      expect([400, 413]).toContain(response.status);
      expect(await imaRow()).toEqual(before);
    });

    it('a window that claims to start beyond the server\'s next entry, or at 2^53 − 1: a judged failure naming both indexes', async () => {
      await setPolicy(POLICY);
      await bootMeasuring(indexed(BASE));
      expect((await attest(BASE)).response.status).toBe(200);
      for (const firstEntry of [7, Number.MAX_SAFE_INTEGER]) {
        await bootMeasuring(indexed(BASE));
        await attest(BASE); // the reboot: refused ima-restart, the state reset for this boot
        const { response } = await attest(BASE, () => ({ firstEntry, entries: b64(binary(indexed(BASE))) }));
        expect([response.status, response.body.code]).toEqual([409, 'attestation.runtime-policy-violation']);
        expect(JSON.stringify(response.body.message)).toContain(`the entries start at ${firstEntry}, the state expects `);
        expect((await imaRow())!.verdict).toMatchObject({ decision: 'fail', firstEntry });
      }
    });

    it('an entry of 1 MiB template data and 20,000 violations: judged (every failure counted, 50 kept, 20 shown), nothing else', async () => {
      await setPolicy(POLICY);
      const big = buildImaEntry({ template: 'ima-buf', algorithm: 'sha256', digest: createHash('sha256').update(Buffer.alloc(1024 * 1024 - 200, 7)).digest(), name: 'huge-buffer', buffer: Buffer.alloc(1024 * 1024 - 200, 7) });
      const violations = Array.from({ length: 20_000 }, (_, i) =>
        buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: Buffer.alloc(32), name: `/var/lib/db/open-${i}`, violation: true }),
      );
      const list = [...BASE, big, ...violations];
      await bootMeasuring(indexed(BASE));
      const { response } = await attest(list, () => ({ firstEntry: 0, entries: b64(binary(indexed(list))) }));
      expect([response.status, response.body.code]).toEqual([409, 'attestation.runtime-policy-violation']);
      expect(JSON.stringify(response.body.message)).toContain('entry 3 huge-buffer');
      expect(JSON.stringify(response.body.message)).toContain('entry 4 /var/lib/db/open-0 sha256:' + '00'.repeat(32) + ': violation');
      const row = await imaRow();
      expect(row!.verdict).toMatchObject({ decision: 'fail', failureCount: 20_001 });
      expect(row!.verdict!.failures).toHaveLength(50);
      const [refusal] = (await audits('attestation.refused')).slice(-1);
      expect((refusal!.details.ima as { failureCount: number; failures: string[] }).failures).toHaveLength(5);
      expect(await machineState()).toBe('quarantined');
    });

    const prepare = () =>
      withAgent(tpm, 'rsa-2048', async (agent) => {
        const started = await post(START, { ekCertificate: b64(agent.certificate), akPublic: agent.akPublic });
        const start = started.body as StartAttestationResponse;
        const { body } = await answer(agent, start);
        // After a reboot: the whole list, from entry 0 (whatever the state of the last boot asked).
        return { start, finish: { ...body, ima: { firstEntry: 0, entries: b64(binary(indexed(BASE))) } } };
      });

    it('two registrations of the machine finished at once: the newer decides, the superseded one is refused; one verdict, the newer\'s', async () => {
      await setPolicy(POLICY);
      await bootMeasuring(indexed(BASE));
      const older = await prepare();
      const newer = await prepare();
      const answers = await Promise.all([post(finishPath(older.start.registrationId), older.finish), post(finishPath(newer.start.registrationId), newer.finish)]);
      expect(answers.map((r) => [r.status, r.body.code ?? r.body.state])).toEqual([
        [409, 'attestation.registration-finished'],
        [200, 'attested'],
      ]);
      expect((await imaRow())!.verdict).toMatchObject({ decision: 'pass', registrationId: newer.start.registrationId, entriesChecked: 3 });
    });

    it('a finish whose list stalls mid-upload holds nothing: another attestation of the machine goes through meanwhile; the stalled one, completed, is refused', async () => {
      await setPolicy(POLICY);
      await bootMeasuring(indexed(BASE));
      const stalled = await prepare();
      const server = app.getHttpServer() as import('node:http').Server;
      if (!server.listening) {
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      }
      const body = Buffer.from(JSON.stringify(stalled.finish));
      const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
      const reply = new Promise<string>((resolve) => {
        let text = '';
        socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
        socket.on('close', () => resolve(text));
        socket.on('end', () => resolve(text));
      });
      socket.write(`POST ${finishPath(stalled.start.registrationId)} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
      try {
        socket.write(body.subarray(0, 100));
        // While it stalls: the machine attests again (a new registration supersedes the stalled one).
        const meanwhile = await prepare();
        const done = await post(finishPath(meanwhile.start.registrationId), meanwhile.finish);
        expect([done.status, done.body.state]).toEqual([200, 'attested']);
        socket.write(body.subarray(100));
        expect(await reply).toMatch(/^HTTP\/1\.1 409 [\s\S]*attestation\.registration-finished/);
        expect((await imaRow())!.verdict).toMatchObject({ decision: 'pass', registrationId: meanwhile.start.registrationId });
      } finally {
        socket.destroy();
      }
      expect(await machineState()).toBe('attested');
    });

    it('the same finish twice at once: one decides, the other is told the registration is finished; one verdict', async () => {
      await setPolicy(POLICY);
      await bootMeasuring(indexed(BASE));
      await withAgent(tpm, 'rsa-2048', async (agent) => {
        const started = await post(START, { ekCertificate: b64(agent.certificate), akPublic: agent.akPublic });
        const start = started.body as StartAttestationResponse;
        const { body } = await answer(agent, start);
        const finish: FinishAttestationRequest = { ...body, ima: { firstEntry: 0, entries: b64(binary(indexed(BASE))) } };
        const answers = await Promise.all([post(finishPath(start.registrationId), finish), post(finishPath(start.registrationId), finish)]);
        expect(answers.map((a) => [a.status, a.body.code ?? a.body.state]).sort()).toEqual([
          [200, 'attested'],
          [409, 'attestation.registration-finished'],
        ]);
        expect((await imaRow())!.verdict).toMatchObject({ decision: 'pass', registrationId: start.registrationId, entriesChecked: 3 });
      });
    });
  });
});

describe("today's changes under attack: a parsed entry is offsets into the list (BinaryListEntry)", () => {
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n >>> 0);
    return b;
  };
  /** u32 PCR ‖ template hash ‖ u32 name length ‖ name ‖ [u32 data length] ‖ data (binary_runtime_measurements). */
  const record = (template: string, data: Buffer): Buffer =>
    Buffer.concat([u32(10), Buffer.alloc(20, 0x11), u32(template.length), Buffer.from(template, 'latin1'), ...(template === 'ima' ? [] : [u32(data.length)]), data]);
  const field = (b: Buffer): Buffer => Buffer.concat([u32(b.length), b]);
  const dng = (alg: string, digest: Buffer): Buffer => field(Buffer.concat([Buffer.from(`${alg}:\0`, 'latin1'), digest]));
  const name = (text: string | Buffer): Buffer => field(Buffer.from(text as string));
  const sha = (alg: string, text: string): Buffer => createHash(alg).update(text).digest();
  const ng = (...fields: Buffer[]): Buffer => record('ima-ng', Buffer.concat(fields));
  const good = marshalBinaryEntry(buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha('sha256', 'g'), name: '/usr/bin/good' }, 0));
  const perBank = (bank: ImaBank): Buffer => marshalBinaryEntry(buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha('sha256', 'p'), name: '/p' }, 0, bank));
  const x = sha('sha256', 'x');

  // Each refusal as the eager parser of 6503572 gave it (entry, field, offset, reason), recorded by running it on these bytes.
  it.each<[string, Buffer, { templateHashAlgorithm?: ImaBank; firstIndex?: number }, [number, string, number, string]]>([
    ['d-ng with no NUL after the colon', ng(field(Buffer.concat([Buffer.from('sha256:'), x])), name('/a\0')), {}, [0, 'd-ng', 42, 'expected "<algorithm>:" and a NUL before the digest']],
    ['d-ng of an unknown algorithm', ng(dng('sha3', x), name('/a\0')), {}, [0, 'd-ng', 42, 'unsupported digest algorithm "sha3"']],
    ["d-ng whose digest is not its algorithm's size", ng(dng('sha256', sha('sha1', 'x')), name('/a\0')), {}, [0, 'd-ng', 42, 'a sha256 digest is 32 bytes, not 20']],
    ['d-ng with no colon', ng(field(Buffer.from('sha256')), name('/a\0')), {}, [0, 'd-ng', 42, 'expected "<algorithm>:" and a NUL before the digest']],
    ['d-ng empty', ng(field(Buffer.alloc(0)), name('/a\0')), {}, [0, 'd-ng', 42, 'expected "<algorithm>:" and a NUL before the digest']],
    ['n-ng without its NUL', ng(dng('sha256', x), name('/a')), {}, [0, 'n-ng', 86, 'the name must end with a NUL']],
    ['n-ng of no bytes', ng(dng('sha256', x), field(Buffer.alloc(0))), {}, [0, 'n-ng', 86, 'the name must end with a NUL']],
    ['n-ng with a NUL inside', ng(dng('sha256', x), name('/a\0b\0')), {}, [0, 'n-ng', 86, 'the name contains a NUL']],
    ['n-ng of 4097 bytes and its NUL', ng(dng('sha256', x), name(Buffer.concat([Buffer.alloc(4097, 0x61), Buffer.alloc(1)]))), {}, [0, 'n-ng', 86, 'name of 4097 bytes exceeds PATH_MAX (4096)']],
    ['ima-ng with a byte after its fields', ng(dng('sha256', x), name('/a\0'), Buffer.from([7])), {}, [0, 'template_data', 89, '1 byte(s) after the ima-ng fields']],
    ['ima-sig without its sig field', record('ima-sig', Buffer.concat([dng('sha256', x), name('/a\0')])), {}, [0, 'sig|buf.len', 90, 'needs 4 byte(s), 0 left in the template data']],
    ['ima-buf whose buf runs past the data', record('ima-buf', Buffer.concat([dng('sha256', x), name('kexec\0'), u32(9), Buffer.from('abc')])), {}, [0, 'buf', 97, 'needs 9 byte(s), 3 left in the template data']],
    ['n-ng length running past the data', ng(dng('sha256', x), u32(100), Buffer.from('/a\0')), {}, [0, 'n-ng', 86, 'needs 100 byte(s), 3 left in the template data']],
    ['d-ng length cut', ng(Buffer.from([1, 0])), {}, [0, 'd-ng.len', 38, 'needs 4 byte(s), 2 left in the template data']],
    ['template data of 1 MiB + 1', Buffer.concat([u32(10), Buffer.alloc(20, 1), u32(6), Buffer.from('ima-ng'), u32((1 << 20) + 1)]), {}, [0, 'template_data_len', 34, '1048577 exceeds 1048576']],
    ['template data past the list', Buffer.concat([u32(10), Buffer.alloc(20, 1), u32(6), Buffer.from('ima-ng'), u32(50), Buffer.alloc(10)]), {}, [0, 'template_data', 38, 'needs 50 byte(s), 10 left']],
    ['a template name of 16 bytes', Buffer.concat([u32(10), Buffer.alloc(20, 1), u32(16), Buffer.alloc(16, 0x61)]), {}, [0, 'template_name_len', 24, '16 is not within 1..15']],
    ['ima-modsig', record('ima-modsig', Buffer.alloc(0)), {}, [0, 'template_name', 28, 'unsupported template "ima-modsig"']],
    ['a legacy name with a NUL', record('ima', Buffer.concat([sha('sha1', 'x'), u32(3), Buffer.from('/\0a')])), {}, [0, 'n', 55, 'the name contains a NUL']],
    ['a legacy n.len of 256', record('ima', Buffer.concat([sha('sha1', 'x'), u32(256), Buffer.alloc(256, 0x61)])), {}, [0, 'n.len', 51, '256 exceeds IMA_EVENT_NAME_LEN_MAX (255)']],
    ['a legacy digest cut', Buffer.concat([u32(10), Buffer.alloc(20, 1), u32(3), Buffer.from('ima'), Buffer.alloc(10)]), {}, [0, 'd', 31, 'needs 20 byte(s), 10 left']],
    ['a sha512 per-bank list cut in the second template hash', Buffer.concat([perBank('sha512'), u32(10), Buffer.alloc(40, 1)]), { templateHashAlgorithm: 'sha512' }, [1, 'template_hash', 137, 'needs 64 byte(s), 40 left']],
    ['a sha384 per-bank list read as sha1', perBank('sha384'), {}, [0, 'template_name_len', 24, '891087191 is not within 1..15']],
    ['the third entry (first index 7) with a NUL in its name', Buffer.concat([good, good, ng(dng('sha1', sha('sha1', 'x')), name('/a\0b\0'))]), { firstIndex: 7 }, [9, 'n-ng', 272, 'the name contains a NUL']],
    ['a PCR cut short', Buffer.from([10, 0]), {}, [0, 'pcr', 0, 'needs 4 byte(s), 2 left']],
  ])('%s: refused as before, the offset counted in the list given (a view into a larger buffer)', (_what, list, options, expected) => {
    const host = Buffer.concat([Buffer.alloc(13, 0xee), list, Buffer.alloc(5, 0xee)]);
    let thrown: unknown;
    try {
      parseBinaryMeasurementList(host.subarray(13, 13 + list.length), options);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ImaParseError);
    const e = thrown as ImaParseError;
    expect([e.entry, e.field, e.offset, e.reason]).toEqual(expected);
  });

  it('accepted as before: a 4096-byte name of 3-byte characters, an empty n-ng name, a 255-byte legacy name; their fields where they lie', () => {
    const long = Buffer.concat([Buffer.from('/'), Buffer.from('\u6771'.repeat(1365))]);
    const list = Buffer.concat([
      ng(dng('sha256', x), name(Buffer.concat([long, Buffer.alloc(1)]))),
      ng(dng('sha512', sha('sha512', 'e')), field(Buffer.alloc(1))),
      record('ima', Buffer.concat([sha('sha1', 'l'), u32(255), Buffer.alloc(255, 0x61)])),
    ]);
    const [a, b, c] = parseBinaryMeasurementList(list);
    expect([a!.name.length, a!.path, a!.digest.algorithm, a!.digest.digest]).toEqual([4096, long.toString('utf8'), 'sha256', x]);
    expect([b!.name.length, b!.path, b!.digest.algorithm, b!.digest.digest, b!.signature, b!.buffer]).toEqual([0, '', 'sha512', sha('sha512', 'e'), undefined, undefined]);
    expect([c!.name, c!.digest.algorithm, c!.digest.digest, c!.templateData.length, c!.raw.length]).toEqual([Buffer.alloc(255, 0x61), 'sha1', sha('sha1', 'l'), 20 + 4 + 255, list.length - a!.raw.length - b!.raw.length]);
  });

  it.each<ImaBank>(['sha1', 'sha256', 'sha384', 'sha512'])('a %s per-bank list: every getter of every template equals the entry it was written from', (bank) => {
    const written: ImaEntry[] = [
      buildImaEntry({ template: 'ima', algorithm: 'sha1', digest: sha('sha1', 'legacy'), name: '/usr/bin/legacy' }, 0, bank),
      buildImaEntry({ template: 'ima-ng', algorithm: 'sha384', digest: sha('sha384', 'ng'), name: 'boot_aggregate' }, 1, bank),
      buildImaEntry({ template: 'ima-sig', algorithm: 'sha256', digest: sha('sha256', 'sig'), name: '/usr/bin/signed', signature: Buffer.from([3, 2, 4, 0, 0, 0, 1]) }, 2, bank),
      buildImaEntry({ template: 'ima-sig', algorithm: 'sha224', digest: sha('sha224', 'unsigned'), name: '/usr/bin/unsigned', signature: Buffer.alloc(0) }, 3, bank),
      buildImaEntry({ template: 'ima-buf', algorithm: 'sha256', digest: sha('sha256', 'kexec'), name: 'kexec-cmdline', buffer: Buffer.from('root=/dev/sda1') }, 4, bank),
      buildImaEntry({ template: 'ima-buf', algorithm: 'sha1', digest: sha('sha1', ''), name: 'empty', buffer: Buffer.alloc(0) }, 5, bank),
      buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: Buffer.alloc(32), name: '/var/log/w', violation: true }, 6, bank),
      buildImaEntry({ pcr: 11, template: 'ima-ng', algorithm: 'md5', digest: Buffer.alloc(16, 7), name: Buffer.from([0x2f, 0xed, 0xa0, 0x80]) }, 7, bank),
    ];
    const view = (e: ImaEntry) => [
      e.index, e.pcr, e.templateHash.toString('hex'), e.templateName, e.templateData.toString('hex'), e.digest.algorithm, e.digest.digest.toString('hex'),
      e.name.toString('hex'), e.path, e.signature?.toString('hex'), e.buffer?.toString('hex'), e.violation, e.raw.toString('hex'),
    ];
    const parsed = parseBinaryMeasurementList(Buffer.concat(written.map(marshalBinaryEntry)), { templateHashAlgorithm: bank });
    expect(parsed.map(view)).toEqual(written.map(view));
    // The replay agrees on both forms, in every bank, and finds no template hash wrong.
    for (const into of ['sha1', 'sha256', 'sha384', 'sha512'] as const) {
      const a = replayImaEntries(written, zeroPcr(into), undefined, { bank: into, templateHashAlgorithm: bank });
      const b = replayImaEntries(parsed, zeroPcr(into), undefined, { bank: into, templateHashAlgorithm: bank });
      expect([b.final, b.invalidTemplateHashes]).toEqual([a.final, []]);
    }
  });
});

describe("today's changes under attack: the digests index must not send to the full judgement what the Map passed", () => {
  // An exclude whose DFA is exponential: a handful of 4 KiB a/b paths spends the round's budget
  // (EXCLUDE_ROUND_VISITS). Plainly allowed entries never run the excludes (isPlainlyAllowed), so a
  // list of listed files passed such a policy before PathDigestIndex, read as built or as parsed.
  const EXPENSIVE = '.*a.{1000}\\x01';
  const sha = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

  function bothForms(names: readonly Buffer[], digests: Record<string, string[]>) {
    const policy = parseRuntimePolicy({ meta: { version: 1 }, digests, excludes: [EXPENSIVE] });
    const built = names.map((n, i) => buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha(n), name: n }, i));
    const parsed = parseBinaryMeasurementList(Buffer.concat(built.map(marshalBinaryEntry)));
    const quotedPcr10 = replayImaEntries(built, zeroPcr('sha256'), undefined, { bank: 'sha256' }).final;
    return [built, parsed].map((entries) => {
      const r = attestImaMeasurements(initialImaState('sha256', 'b'), { bank: 'sha256', bootTime: 'b', startIndex: 0, entries, quotedPcr10 }, policy);
      return [r.outcome, r.reason, r.verdicts.map((v) => [v.kind, v.rule])];
    });
  }

  it('names that are not UTF-8 (a Latin-1 file name, captured as U+FFFD): verified as parsed, as built, without running the excludes', () => {
    const names = Array.from({ length: 12 }, (_, i) => Buffer.concat([Buffer.from(abPath(4094, i + 1)), Buffer.from([0xe9])]));
    const [asBuilt, asParsed] = bothForms(names, Object.fromEntries(names.map((n) => [n.toString('utf8'), [sha(n).toString('hex')]])));
    expect(asBuilt![0]).toBe('verified');
    expect(asParsed).toEqual(asBuilt);
  });

  it('paths a hostile capture pushed out of the index (33+ colliding keys): verified as parsed, as built', () => {
    // 32 short paths fill the run of slots from 0 (the table of 42 keys has 128), then 10 long ones that start there too.
    const collide = (make: (i: number) => string, count: number): string[] => {
      const out: string[] = [];
      for (let i = 0; out.length < count; i += 1) {
        const path = make(i);
        if ((pathHash(Buffer.from(path), 0, Buffer.byteLength(path)) & 127) === 0) {
          out.push(path);
        }
      }
      return out;
    };
    const paths = [...collide((i) => `/tmp/collide-${i}`, 32), ...collide((i) => abPath(4095, 1000 + i), 10)];
    const names = paths.map((p) => Buffer.from(p));
    const [asBuilt, asParsed] = bothForms(names, Object.fromEntries(names.map((n) => [n.toString('utf8'), [sha(n).toString('hex')]])));
    expect(asBuilt![0]).toBe('verified');
    expect(asParsed).toEqual(asBuilt);
  });
});
