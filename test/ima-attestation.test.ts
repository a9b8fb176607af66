/**
 * Runtime integrity in attestation (issue 17): a group's runtime policy (Keylime's format) set via
 * the operator API, machines attested in-process on swtpm (test/support/attestation-agent.ts) whose
 * PCR 10 was extended with a synthetic IMA list entry by entry as the kernel does, against a real
 * PostgreSQL. A list whose extends reach the quoted PCR 10 attests; a file not in the allowlist, a
 * changed digest, a violation, a cut, shortened or reordered list and a measurement hidden from the
 * list each quarantine the machine in enforce mode (code, audit record, machine state, verdict on
 * GET …/evidence naming the file) and are recorded in warn mode; an excluded path passes; the second
 * round sends and checks only the new entries; a reboot restarts from entry 0; Keylime's own
 * runtime-policy fixture and a canary's captured list decide the same cases.
 */
import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { INestApplication } from '@nestjs/common';
import { buildImaEntry, entryExtend, type ImaEntry, marshalBinaryEntry, parseAsciiMeasurementList } from '@rackseal/ima';
import { type FinishAttestationRequest, nodeApiPath, type StartAttestationResponse } from '@rackseal/node-api-contracts';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { answer, b64, withAgent } from './support/attestation-agent';
import { fixturePath } from './support/fixtures';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { type ImaRack, startImaRack } from './support/ima-rack';

jest.setTimeout(180_000);

const START = nodeApiPath('attestations');
const finishPath = (id: string) => nodeApiPath(`attestations/${id}/finish`);
const sha256 = (text: string) => createHash('sha256').update(text).digest();
const file = (path: string, content = `content of ${path}`): ImaEntry => buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha256(content), name: path });

/** What the machine's kernel measured at boot: boot_aggregate and four files. */
const BASE = [file('boot_aggregate', 'aggregate'), file('/usr/bin/bash'), file('/usr/lib/libc.so.6'), file('/usr/sbin/sshd'), file('/etc/ld.so.cache')];
const LATER = [file('/usr/bin/ls'), file('/usr/bin/cat'), file('/usr/bin/grep')];
const hex = (e: ImaEntry) => e.digest.digest.toString('hex');

/** The group's allowlist: every file above, anything under /tmp excluded. */
const POLICY = {
  meta: { version: 1, generator: 3, timestamp: '2026-12-03 12:00:00' },
  release: 0,
  digests: Object.fromEntries([...BASE, ...LATER].map((e) => [e.path, [hex(e)]])),
  excludes: ['/tmp/.*'],
  keyrings: {},
  ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null },
  'ima-buf': {},
  'verification-keys': '',
};

/** Indexes the entries as the list holds them (0, 1, …). */
const indexed = (entries: readonly ImaEntry[]): ImaEntry[] => entries.map((e, i) => ({ ...e, index: i }));
const binary = (entries: readonly ImaEntry[]): Buffer => Buffer.concat(entries.map(marshalBinaryEntry));

describe('runtime integrity: IMA lists judged at every attestation (issue 17)', () => {
  const fixture = useSwtpms(1);
  let app: INestApplication;
  let ds: DataSource;
  let tpm: SwtpmMachine;
  let rack: ImaRack<'policyRead' | 'policyWrite' | 'inventoryRead'>;
  let tokens: ImaRack<'policyRead' | 'policyWrite' | 'inventoryRead'>['tokens'];

  beforeAll(async () => {
    tpm = fixture.at(0);
    rack = await startImaRack(fixture, { policyRead: 'policy:read', policyWrite: 'policy:write', inventoryRead: 'inventory:read' }, ['SN-ELSEWHERE,storage']);
    ({ app, ds, tokens } = rack);
  }, 180_000);

  afterAll(async () => {
    await rack?.close();
  });

  const http = (method: 'get' | 'put' | 'post' | 'delete', path: string, token = tokens.admin) => rack.http(method, path, token);
  const post = (path: string, body: unknown) => request(app.getHttpServer()).post(path).set('Content-Type', 'application/json').send(body as object);
  const lastAudit = async (action: string) =>
    ((await ds.query('SELECT actor, subject, outcome, details FROM audit_log WHERE action = $1 ORDER BY id DESC LIMIT 1', [action])) as {
      actor: string;
      subject: string;
      outcome: string;
      details: Record<string, unknown>;
    }[])[0]!;
  const machineState = async () => ((await ds.query("SELECT state FROM machines WHERE serial = 'SN-IMA'")) as { state: string }[])[0]!.state;
  const imaRow = async () =>
    ((await ds.query("SELECT s.state, s.verdict FROM machine_ima_states s JOIN machines m ON m.id = s.machine_id WHERE m.serial = 'SN-IMA'")) as {
      state: { nextEntry: number; bootTime: string | null; pcr10: string };
      verdict: { decision: string; failures: { path: string; digest: string; kind: string; rule: string }[]; reason?: string } | null;
    }[])[0];

  async function setPolicy(policy: unknown, mode: 'enforce' | 'warn' = 'enforce'): Promise<request.Response> {
    const response = await http('put', '/v1/groups/racks/runtime-policy', tokens.policyWrite).send({ policy, mode });
    expect(response.status).toBe(200);
    return response;
  }

  /** Reboots the machine (PCRs to zero, the TPM's resetCount up) and lets its kernel measure `entries` into PCR 10. */
  async function bootMeasuring(entries: readonly ImaEntry[]): Promise<void> {
    await tpm.reboot();
    await measure(entries);
  }

  async function measure(entries: readonly ImaEntry[]): Promise<void> {
    for (const entry of entries) {
      await tpm.extendPcr(10, 'sha256', entryExtend(entry, { bank: 'sha256' }).extend.toString('hex'));
    }
  }

  /**
   * One attestation: start, quote what the server asks, finish with `ima` built from the start's
   * request — by default the entries of `list` from `fromEntry` on, as the agent sends them.
   */
  async function attest(list: readonly ImaEntry[], send?: (start: StartAttestationResponse) => FinishAttestationRequest['ima'] | undefined): Promise<{ start: StartAttestationResponse; response: request.Response }> {
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

  /** A quarantine by the runtime policy: the code, the lines naming `named`, the audit record, the machine's state and its verdict. */
  async function expectViolation(response: request.Response, named: string, kind: string): Promise<void> {
    expect([response.status, response.body.code]).toEqual([409, 'attestation.runtime-policy-violation']);
    const message = (Array.isArray(response.body.message) ? response.body.message : [response.body.message]).join('\n');
    expect(message).toContain(named);
    const audit = await lastAudit('attestation.refused');
    expect(audit).toMatchObject({ subject: 'machine:SN-IMA', outcome: 'refused', details: expect.objectContaining({ code: 'attestation.runtime-policy-violation' }) });
    expect(JSON.stringify(audit.details.explanation)).toContain(named);
    expect(audit.details.ima).toMatchObject({ decision: 'fail', mode: 'enforce' });
    expect(await machineState()).toBe('quarantined');
    const row = await imaRow();
    // A failure restarts from zero: the next round replays the whole list (Keylime's behaviour).
    expect(row!.state).toMatchObject({ nextEntry: 0, bootTime: null });
    expect(row!.verdict!.decision).toBe('fail');
    const evidence = await http('get', '/v1/machines/SN-IMA/evidence', tokens.inventoryRead);
    expect(evidence.status).toBe(200);
    expect(evidence.body.runtime).toMatchObject({ decision: 'fail', mode: 'enforce' });
    expect(JSON.stringify(evidence.body.runtime)).toContain(named);
    if (kind !== 'list') {
      expect(evidence.body.runtime.failures).toEqual(expect.arrayContaining([expect.objectContaining({ kind, path: named })]));
    }
  }

  it('sets the runtime policy through the API (policy:write; policy:read shows it; audited with its SHA-256)', async () => {
    const refused = await http('put', '/v1/groups/racks/runtime-policy', tokens.policyRead).send({ policy: POLICY });
    expect([refused.status, refused.body.code]).toEqual([403, 'auth.forbidden']);
    const bad = await http('put', '/v1/groups/racks/runtime-policy', tokens.policyWrite).send({ policy: { ...POLICY, excludes: ['(a)\\1'] } });
    expect([bad.status, bad.body.code]).toEqual([400, 'policy.invalid']);
    expect(bad.body.message).toContain('excludes');
    expect(await http('get', '/v1/groups/racks/runtime-policy', tokens.policyRead)).toMatchObject({ status: 404, body: { code: 'policy.not-found' } });

    const set = await setPolicy(POLICY);
    const stored = JSON.stringify(POLICY);
    expect(set.body).toMatchObject({ group: 'racks', mode: 'enforce', sha256: createHash('sha256').update(stored).digest('hex'), paths: 8, excludes: 1 });
    expect(await lastAudit('policy.runtime-set')).toMatchObject({ outcome: 'success', subject: 'group:racks', details: expect.objectContaining({ sha256: set.body.sha256, previousSha256: null, mode: 'enforce', paths: 8 }) });
    const shown = await http('get', '/v1/groups/racks/runtime-policy', tokens.policyRead);
    expect(shown.status).toBe(200);
    expect(shown.body.policy).toEqual(POLICY);
  });

  it('a list whose extends reached PCR 10 attests; the next round sends and checks only the new entries', async () => {
    await bootMeasuring(BASE);
    const first = await attest(BASE);
    expect(first.start.pcrSelection).toEqual({ bank: 'sha256', pcrs: [0, 1, 2, 3, 4, 5, 6, 7, 10] });
    expect(first.start.ima).toEqual({ fromEntry: 0 });
    expect(first.response.status).toBe(200);
    expect(first.response.body.ima).toEqual({ decision: 'pass', entriesChecked: 5, nextEntry: 5, failures: [] });
    expect(await lastAudit('attestation.succeeded')).toMatchObject({ details: expect.objectContaining({ ima: expect.objectContaining({ decision: 'pass', entriesChecked: 5, nextEntry: 5 }) }) });
    expect((await imaRow())!.state).toMatchObject({ nextEntry: 5 });

    await measure(indexed([...BASE, ...LATER]).slice(5));
    let sent = 0;
    const second = await attest([...BASE, ...LATER], (start) => {
      const window = indexed([...BASE, ...LATER]).slice(start.ima!.fromEntry);
      sent = window.length;
      return { firstEntry: start.ima!.fromEntry, entries: b64(binary(window)) };
    });
    expect(second.start.ima).toEqual({ fromEntry: 5 });
    expect(sent).toBe(3);
    expect(second.response.status).toBe(200);
    expect(second.response.body.ima).toEqual({ decision: 'pass', entriesChecked: 3, nextEntry: 8, failures: [] });

    // Nothing new: an empty window attests (PCR 10 is where the state left it).
    const third = await attest([...BASE, ...LATER]);
    expect(third.start.ima).toEqual({ fromEntry: 8 });
    expect(third.response.body.ima).toEqual({ decision: 'pass', entriesChecked: 0, nextEntry: 8, failures: [] });
    const evidence = await http('get', '/v1/machines/SN-IMA/evidence', tokens.inventoryRead);
    expect(evidence.body.runtime).toMatchObject({ decision: 'pass', firstEntry: 8, entriesChecked: 0, nextEntry: 8, failureCount: 0, failures: [] });
  });

  it('a reboot restarts from entry 0: the window of the old boot is refused (attestation.ima-restart), the next start asks for the whole list', async () => {
    await bootMeasuring(BASE);
    const stale = await attest(BASE);
    expect(stale.start.ima).toEqual({ fromEntry: 8 });
    expect([stale.response.status, stale.response.body.code]).toEqual([409, 'attestation.ima-restart']);
    const [registration] = (await ds.query('SELECT outcome, failure_code FROM attestation_registrations WHERE id = $1', [stale.start.registrationId])) as { outcome: string; failure_code: string }[];
    expect(registration).toEqual({ outcome: 'refused', failure_code: 'attestation.ima-restart' });
    expect(await lastAudit('attestation.refused')).toMatchObject({ subject: 'machine:SN-IMA', details: expect.objectContaining({ code: 'attestation.ima-restart' }) });
    const reset = (await imaRow())!.state;
    expect(reset).toMatchObject({ nextEntry: 0, bootTime: expect.stringMatching(/^tpm-reset:/) });
    const again = await attest(BASE);
    expect(again.start.ima).toEqual({ fromEntry: 0 });
    expect(again.response.status).toBe(200);
    expect(again.response.body.ima).toEqual({ decision: 'pass', entriesChecked: 5, nextEntry: 5, failures: [] });
    expect(await machineState()).toBe('attested');
  });

  it('ima.templateHashAlgorithm: a per-bank SHA-256 window attests though the policy says sha1; a name that is not an IMA bank is refused before anything is judged', async () => {
    // State: entries 0-4 of this boot verified (the test before).
    const perBank = (entries: readonly ImaEntry[]) => entries.map((e) => ({ ...e, templateHash: entryExtend(e, { bank: 'sha256' }).extend }));
    const window = (algorithm: unknown) => (start: StartAttestationResponse) =>
      ({ firstEntry: start.ima!.fromEntry, entries: b64(binary(perBank(indexed([...BASE, ...LATER]).slice(start.ima!.fromEntry)))), templateHashAlgorithm: algorithm }) as FinishAttestationRequest['ima'];
    await measure(LATER);
    for (const bad of ['md5', '../sha256', 'SHA256', 1]) {
      const { start, response } = await attest([], window(bad));
      expect([response.status, response.body.code]).toEqual([400, 'request.invalid']);
      expect(JSON.stringify(response.body.message)).toContain('ima.templateHashAlgorithm must be one of the following values: sha1, sha256, sha384, sha512');
      // Refused at the door: the registration is still open, the machine's runtime state untouched, no credential issued.
      const [registration] = (await ds.query('SELECT outcome FROM attestation_registrations WHERE id = $1', [start.registrationId])) as { outcome: string | null }[];
      expect(registration!.outcome).toBeNull();
      expect((await imaRow())!.state).toMatchObject({ nextEntry: 5 });
    }

    const { start, response } = await attest([], window('sha256'));
    expect(start.ima).toEqual({ fromEntry: 5 });
    expect(response.status).toBe(200);
    expect(response.body.ima).toEqual({ decision: 'pass', entriesChecked: 3, nextEntry: 8, failures: [] });
    expect(await lastAudit('attestation.succeeded')).toMatchObject({ details: expect.objectContaining({ ima: expect.objectContaining({ templateHashAlgorithm: 'sha256', policyLogHashAlgorithm: 'sha1' }) }) });

    // The same per-bank bytes with no algorithm named are read as the policy's sha1 list: they do not parse.
    await measure(indexed([file('/usr/bin/vi')]));
    const unnamed = await attest([], (s) => ({ firstEntry: s.ima!.fromEntry, entries: b64(binary(perBank([{ ...file('/usr/bin/vi'), index: 8 }]))) }));
    expect([unnamed.response.status, unnamed.response.body.code]).toEqual([409, 'attestation.runtime-policy-violation']);
    expect(JSON.stringify(unnamed.response.body.message)).toContain('does not parse as a list of sha1 template hashes');
  });

  it('an excluded path passes (excludes[0] "/tmp/.*")', async () => {
    const list = [...BASE, file('/tmp/build-42/cc1')];
    await bootMeasuring(list);
    const { response } = await attest(list, () => ({ firstEntry: 0, entries: b64(binary(indexed(list))) }));
    expect(response.status).toBe(200);
    expect(response.body.ima).toMatchObject({ decision: 'pass', entriesChecked: 6 });
  });

  const evil = file('/usr/bin/evil');
  const changedSshd = file('/usr/sbin/sshd', 'a trojaned sshd');
  const violation = buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: Buffer.alloc(32), name: '/var/lib/db/open-for-write', violation: true });
  const fromZero = (entries: readonly ImaEntry[]) => () => ({ firstEntry: 0, entries: b64(binary(indexed(entries))) });

  it.each([
    { name: 'a file not in the allowlist', measured: [...BASE, evil], sent: undefined, named: '/usr/bin/evil', kind: 'not-in-allowlist', line: `/usr/bin/evil sha256:${hex(evil)}: not-in-allowlist (digests)` },
    { name: 'a changed digest', measured: [...BASE.slice(0, 3), changedSshd, BASE[4]!], sent: undefined, named: '/usr/sbin/sshd', kind: 'digest-mismatch', line: `allowed: ${hex(BASE[3]!)}` },
    { name: 'a violation entry', measured: [...BASE, violation], sent: undefined, named: '/var/lib/db/open-for-write', kind: 'violation', line: 'violation' },
    {
      name: 'a list cut inside its last entry',
      measured: BASE,
      sent: () => ({ firstEntry: 0, entries: b64(binary(indexed(BASE)).subarray(0, -7)) }),
      named: 'does not parse',
      kind: 'list',
      line: 'entry 4',
    },
    { name: 'a list without its last entries', measured: BASE, sent: fromZero(BASE.slice(0, 3)), named: 'does not reach the quoted PCR 10', kind: 'list', line: 'replaying all 3 new entries' },
    { name: 'a reordered list', measured: BASE, sent: fromZero([BASE[0]!, BASE[2]!, BASE[1]!, BASE[3]!, BASE[4]!]), named: 'does not reach the quoted PCR 10', kind: 'list', line: 'replaying all 5' },
    { name: 'a measurement hidden from the list', measured: [...BASE, evil], sent: fromZero(BASE), named: 'does not reach the quoted PCR 10', kind: 'list', line: 'replaying all 5' },
  ])('enforce: $name quarantines the machine, naming it', async ({ measured, sent, named, kind, line }) => {
    await bootMeasuring(measured);
    const { response } = await attest(measured, sent ?? fromZero(measured));
    await expectViolation(response, named, kind);
    expect(JSON.stringify(response.body.message)).toContain(line);
  });

  it('enforce: a finish without the IMA list is a failure, not a way around the policy', async () => {
    await bootMeasuring(BASE);
    const { response } = await attest(BASE, () => undefined);
    await expectViolation(response, 'the agent sent no IMA measurement list', 'list');
  });

  it('warn: the same failure attests the machine and records the verdict, file named', async () => {
    await setPolicy(POLICY, 'warn');
    const measured = [...BASE, evil];
    await bootMeasuring(measured);
    const { response } = await attest(measured, fromZero(measured));
    expect(response.status).toBe(200);
    expect(response.body.ima).toMatchObject({ decision: 'fail', entriesChecked: 6, nextEntry: 0 });
    expect(response.body.ima.failures).toEqual([`entry 5 /usr/bin/evil sha256:${hex(evil)}: not-in-allowlist (digests)`]);
    expect(await machineState()).toBe('attested');
    expect(await lastAudit('attestation.succeeded')).toMatchObject({ details: expect.objectContaining({ ima: expect.objectContaining({ decision: 'fail', mode: 'warn', failureCount: 1 }) }) });
    const evidence = await http('get', '/v1/machines/SN-IMA/evidence', tokens.inventoryRead);
    expect(evidence.body.runtime).toMatchObject({ decision: 'fail', mode: 'warn', failures: [expect.objectContaining({ path: '/usr/bin/evil', kind: 'not-in-allowlist', digest: `sha256:${hex(evil)}` })] });
    await setPolicy(POLICY, 'enforce');
  });

  it.each([
    ['entries that are not base64', { firstEntry: 0, entries: 'not base64!' }],
    ['a negative first entry', { firstEntry: -1, entries: '' }],
    ['a first entry that is not an integer', { firstEntry: 1.5, entries: '' }],
    ['an unknown field', { firstEntry: 0, entries: '', extra: 1 }],
  ])('a malformed ima field (%s) is refused 400 request.invalid naming it, nothing decided', async (_name, ima) => {
    const before = await imaRow();
    const { response } = await attest(BASE, () => ima as never);
    expect([response.status, response.body.code]).toEqual([400, 'request.invalid']);
    expect(JSON.stringify(response.body.message)).toContain('ima.');
    if ('extra' in ima) {
      // The wording an agent reads to learn that a control plane predates a field (ima.templateHashAlgorithm, attestation-exchange.ts).
      expect(JSON.stringify(response.body.message)).toContain('ima.property extra should not exist');
    }
    expect(await imaRow()).toEqual(before);
  });

  it('runtime-policy refusals: a bad group name, a bad mode, an unknown field in the body, no policy to remove', async () => {
    const badGroup = await http('put', '/v1/groups/Racks!/runtime-policy', tokens.policyWrite).send({ policy: POLICY });
    expect([badGroup.status, badGroup.body.code]).toEqual([400, 'policy.invalid-group']);
    const badMode = await http('put', '/v1/groups/racks/runtime-policy', tokens.policyWrite).send({ policy: POLICY, mode: 'audit' });
    expect([badMode.status, badMode.body.code]).toEqual([400, 'request.invalid']);
    const extra = await http('put', '/v1/groups/racks/runtime-policy', tokens.policyWrite).send({ policy: POLICY, groups: ['x'] });
    expect([extra.status, extra.body.code]).toEqual([400, 'request.invalid']);
    const noneToRemove = await http('delete', '/v1/groups/empty/runtime-policy', tokens.policyWrite);
    expect([noneToRemove.status, noneToRemove.body.code]).toEqual([404, 'policy.not-found']);
    // Nothing written by any of them: the group's policy is the one set before.
    expect((await http('get', '/v1/groups/racks/runtime-policy', tokens.policyRead)).body.policy).toEqual(POLICY);
  });

  it('a registration started before the runtime policy was set does not quote PCR 10: refused (attestation.ima-pcr-missing), nothing issued', async () => {
    expect((await http('delete', '/v1/groups/racks/runtime-policy', tokens.policyWrite)).status).toBe(200);
    expect(await lastAudit('policy.runtime-removed')).toMatchObject({ outcome: 'success', details: expect.objectContaining({ group: 'racks' }) });
    await bootMeasuring(BASE);
    const credentials = async () => Number(((await ds.query('SELECT count(*)::int AS n FROM node_credentials')) as { n: number }[])[0]!.n);
    const before = await credentials();
    await withAgent(tpm, 'rsa-2048', async (agent) => {
      const started = await post(START, { ekCertificate: b64(agent.certificate), akPublic: agent.akPublic });
      const start = started.body as StartAttestationResponse;
      expect(start.ima).toBeUndefined();
      expect(start.pcrSelection.pcrs).not.toContain(10);
      await setPolicy(POLICY);
      const { body } = await answer(agent, start);
      const response = await post(finishPath(start.registrationId), { ...body, ima: { firstEntry: 0, entries: b64(binary(indexed(BASE))) } });
      expect([response.status, response.body.code]).toEqual([400, 'attestation.ima-pcr-missing']);
    });
    expect(await lastAudit('attestation.refused')).toMatchObject({ details: expect.objectContaining({ code: 'attestation.ima-pcr-missing' }) });
    expect(await credentials()).toBe(before);
  });

  it("Keylime's runtime-policy fixture imports as it is and decides the same cases", async () => {
    const keylime = JSON.parse(readFileSync(fixturePath('ima', 'keylime-runtime-policy.json'), 'utf8')) as Record<string, unknown>;
    await setPolicy(keylime);
    // Keylime's fixture allows these files with the SHA-256 of empty content.
    const allowed = buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: createHash('sha256').digest(), name: '/usr/bin/foobar-bin' });
    const changed = buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha256('not empty'), name: '/usr/lib/foobar.so' });
    await bootMeasuring([allowed]);
    expect((await attest([allowed], fromZero([allowed]))).response.body.ima).toMatchObject({ decision: 'pass', entriesChecked: 1 });
    await bootMeasuring([allowed, changed]);
    await expectViolation((await attest([allowed, changed], fromZero([allowed, changed]))).response, '/usr/lib/foobar.so', 'digest-mismatch');
    await bootMeasuring([allowed, evil]);
    await expectViolation((await attest([allowed, evil], fromZero([allowed, evil]))).response, '/usr/bin/evil', 'not-in-allowlist');
  });

  it("ima-sig: Keylime's signed entries attest by their signatures alone; a malformed signature quarantines, naming the file", async () => {
    const imaFixture = (name: string) => readFileSync(fixturePath('ima', name));
    const keys = ['keylime-rsa2048pub.pem', 'keylime-secp256k1.pem'].map((f) => createPublicKey(imaFixture(f)).export({ type: 'spki', format: 'der' }).toString('base64'));
    await setPolicy({ meta: { version: 1 }, 'verification-keys': JSON.stringify({ pubkeys: keys }) });
    const signed = parseAsciiMeasurementList(imaFixture('keylime-signatures.txt'));
    await bootMeasuring(indexed(signed));
    expect((await attest(signed, fromZero(signed))).response.body.ima).toMatchObject({ decision: 'pass', entriesChecked: 2 });
    // Keylime's edited signature (a wrong size field), logged with a consistent template hash as a kernel would.
    const edited = parseAsciiMeasurementList(imaFixture('keylime-bad-signatures.txt'))[0]!;
    const bad = buildImaEntry({ template: 'ima-sig', algorithm: edited.digest.algorithm, digest: edited.digest.digest, name: edited.name, signature: edited.signature! });
    const list = [signed[0]!, bad];
    await bootMeasuring(indexed(list));
    await expectViolation((await attest(list, fromZero(list))).response, '/usr/bin/zmore', 'bad-signature');
  });

  it('--from-machine: the canary\'s measurements verified this boot become the allowlist (refusals audited)', async () => {
    // A permissive start in warn mode: the canary sends its list, its measurements are kept.
    await setPolicy({ meta: { version: 1 }, excludes: ['.*'] }, 'warn');
    const canaryList = [...BASE, file('/opt/app/server')];
    await bootMeasuring(canaryList);
    expect((await attest(canaryList, fromZero(canaryList))).response.body.ima).toMatchObject({ decision: 'pass', entriesChecked: 6 });

    const elsewhere = await http('post', '/v1/groups/racks/runtime-policy/from-machine', tokens.policyWrite).send({ machine: 'SN-ELSEWHERE' });
    expect([elsewhere.status, elsewhere.body.code]).toEqual([409, 'policy.machine-not-in-group']);
    expect(await lastAudit('policy.runtime-set')).toMatchObject({ outcome: 'refused', details: expect.objectContaining({ code: 'policy.machine-not-in-group', serial: 'SN-ELSEWHERE' }) });

    const neverSent = await http('post', '/v1/groups/racks/runtime-policy/from-machine', tokens.policyWrite).send({ machine: 'SN-SPARE' });
    expect([neverSent.status, neverSent.body.code]).toEqual([409, 'policy.no-evidence']);
    expect(await lastAudit('policy.runtime-set')).toMatchObject({ outcome: 'refused', details: expect.objectContaining({ code: 'policy.no-evidence', serial: 'SN-SPARE' }) });
    const badExclude = await http('post', '/v1/groups/racks/runtime-policy/from-machine', tokens.policyWrite).send({ machine: 'SN-IMA', excludes: ['(a)\\1'] });
    expect([badExclude.status, badExclude.body.code]).toEqual([400, 'policy.invalid']);

    const captured = await http('post', '/v1/groups/racks/runtime-policy/from-machine', tokens.policyWrite).send({ machine: 'SN-IMA', excludes: ['/tmp/.*'] });
    expect(captured.status).toBe(200);
    expect(captured.body).toMatchObject({ mode: 'enforce', paths: 6, excludes: 1 });
    expect(captured.body.policy.digests['/opt/app/server']).toEqual([hex(canaryList[5]!)]);
    expect(await lastAudit('policy.runtime-set')).toMatchObject({ outcome: 'success', details: expect.objectContaining({ source: 'machine', serial: 'SN-IMA', sha256: captured.body.sha256 }) });

    await bootMeasuring(canaryList);
    expect((await attest(canaryList, fromZero(canaryList))).response.body.ima).toMatchObject({ decision: 'pass' });
    await bootMeasuring([...canaryList, evil]);
    await expectViolation((await attest([...canaryList, evil], fromZero([...canaryList, evil]))).response, '/usr/bin/evil', 'not-in-allowlist');
  });
});
