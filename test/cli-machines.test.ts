/**
 * `rackseal machines list|show|keys|revoke|reattest` (issue 12 item 4, keys issue 13) against a real control plane process:
 * filters (state, group, not attested since a date-time or a duration), the human and --json views of
 * one machine with its last failure explained and its history, revoke twice (exit 0 both times, the
 * second says nothing changed), and the refusals an operator meets, each naming the command.
 */
import { MachinesRepository } from '@rackseal/machines';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { runRacksealCli } from './support/cli-runner';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { type RunningProcess, startControlPlane } from './support/processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { testEnv } from './support/test-config';

const HOUR = 3_600_000;
/** The CLI's minute form of an ISO date-time: `2026-12-02 19:40Z`. */
const minuteOf = (iso: string): string => `${iso.slice(0, 10)} ${iso.slice(11, 16)}Z`;

describe('rackseal machines list|show|keys|revoke|reattest', () => {
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let cp: { proc: RunningProcess; baseUrl: string };
  let ds: DataSource;
  let admin: string;
  let reader: string;
  const ids: Record<string, string> = {};
  const now = Date.now();
  const registrationId = randomUUID();

  const cliAs = (token: string, ...args: string[]) => runRacksealCli(args, { env: { RACKSEAL_SERVER: cp.baseUrl, RACKSEAL_TOKEN: token } });
  const cli = (...args: string[]) => cliAs(admin, ...args);

  async function machine(serial: string, group: string, attestedAt?: Date): Promise<string> {
    const machines = new MachinesRepository(ds);
    const id = randomUUID();
    await ds.query(`INSERT INTO machines (id, serial, hostname, group_name, ek_pub_hash, state, imported_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'imported', now(), now())`, [
      id,
      serial,
      serial.toLowerCase(),
      group,
      randomUUID().replace(/-/g, '').padEnd(64, 'b'),
    ]);
    if (attestedAt !== undefined) {
      await ds.transaction(async (m) => {
        await machines.transition({ machineId: id, from: 'imported', to: 'attesting', reason: 'registration started', actor: 'system:attestation' }, attestedAt, m);
        await machines.transition({ machineId: id, from: 'attesting', to: 'attested', reason: 'quote matched the policy', actor: 'system:attestation' }, attestedAt, m);
        await machines.recordAttested(id, attestedAt, m);
      });
    }
    return id;
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    ds = await openDataSource(db.url, 2);
    const bootstrap = runRacksealCli(['token', 'create', '--name', 'admin', '--scope', 'admin'], { env: { DATABASE_URL: db.url } });
    expect(bootstrap.status).toBe(0);
    admin = bootstrap.stdout.trim();
    cp = await startControlPlane(testEnv(db, prefix.prefix));
    reader = cli('token', 'create', '--server', '--name', 'reader', '--scope', 'inventory:read').stdout.trim();

    ids.fresh = await machine('NODE-1', 'rack-a', new Date(now - HOUR));
    ids.stale = await machine('NODE-2', 'rack-a', new Date(now - 48 * HOUR));
    ids.never = await machine('NODE-3', 'rack-b');
    ids.failed = await machine('NODE-4', 'rack-b', new Date(now - 30 * HOUR));
    const machines = new MachinesRepository(ds);
    const at = new Date(now - 2 * HOUR);
    await ds.transaction(async (m) => {
      await machines.transition({ machineId: ids.failed!, from: 'attested', to: 'attesting', reason: 're-attestation', actor: 'system:attestation' }, at, m);
      await machines.transition({ machineId: ids.failed!, from: 'attesting', to: 'quarantined', reason: 'PCR 4 differs', actor: 'system:attestation' }, at, m);
      await machines.recordFailure(
        ids.failed!,
        { at, code: 'attestation.pcr-mismatch', reason: 'PCR 4 differs from the policy of rack-b', explanation: ['PCR 4: event #12 EV_EFI_BOOT_SERVICES_APPLICATION digest differs'], registrationId },
        m,
      );
    });
  });

  afterAll(async () => {
    await cp?.proc.stop();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
  });

  const listed = (run: { stdout: string }): string[] => (JSON.parse(run.stdout) as { serial: string }[]).map((m) => m.serial);

  it('list shows the last attestation and filters by --state, --group and --not-attested-since (a duration or a date-time)', () => {
    const all = cli('machines', 'list');
    expect([all.status, all.stderr]).toEqual([0, '']);
    const lines = all.stdout.split('\n');
    expect(lines[0]).toMatch(/^SERIAL +HOSTNAME +ASSET TAG +GROUP +STATE +LAST ATTESTED +EK PUB HASH +IMPORTED$/);
    expect(lines[1]).toMatch(/^NODE-1 +node-1 +- +rack-a +attested +\d{4}-\d\d-\d\d \d\d:\d\dZ +[0-9a-f]{16} +\d{4}-\d\d-\d\d$/);
    expect(lines[3]).toMatch(/^NODE-3 +node-3 +- +rack-b +imported +never +/);
    expect(lines[5]).toBe('4 machine(s)');

    expect(listed(cli('machines', 'list', '--state', 'quarantined', '--json'))).toEqual(['NODE-4']);
    expect(listed(cli('machines', 'list', '--group', 'rack-a', '--json'))).toEqual(['NODE-1', 'NODE-2']);
    expect(listed(cli('machines', 'list', '--not-attested-since', '24h', '--json'))).toEqual(['NODE-2', 'NODE-3', 'NODE-4']);
    expect(listed(cli('machines', 'list', '--not-attested-since', '3d', '--json'))).toEqual(['NODE-3']);
    expect(listed(cli('machines', 'list', '--not-attested-since', new Date(now - 40 * HOUR).toISOString(), '--state', 'attested', '--json'))).toEqual(['NODE-2']);
    expect(listed(cli('machines', 'list', '--not-attested-since', '24h', '--after', 'NODE-2', '--limit', '1', '--json'))).toEqual(['NODE-3']);
    const paged = cli('machines', 'list', '--not-attested-since', '24h', '--limit', '2');
    expect(paged.stdout).toMatch(/\n2 machine\(s\); more: --after "NODE-3"\n$/);
  });

  it('list refuses a bad --state or --not-attested-since before sending anything (exit 2)', () => {
    const badState = cli('machines', 'list', '--state', 'dead');
    expect(badState.status).toBe(2);
    expect(badState.stderr).toMatch(/--state.*dead.*imported, attesting, attested, quarantined, revoked/);
    for (const bad of ['yesterday', '24', '2026-03-01T10:00:00', '2026-02-30T00:00:00Z', '-1h']) {
      const run = cli('machines', 'list', '--not-attested-since', bad);
      expect([bad, run.status, run.stdout]).toEqual([bad, 2, '']);
      expect(run.stderr).toContain('--not-attested-since must be a date-time with its offset (e.g. 2026-03-01T10:00:00Z) or a duration back from now (e.g. 90s, 30m, 24h, 7d, 2w).');
    }
  });

  it('show prints the machine, its last failure with the explanation lines, and its history; --json the API answer', () => {
    const shown = cli('machines', 'show', 'NODE-4');
    expect([shown.status, shown.stderr]).toEqual([0, '']);
    const out = shown.stdout;
    expect(out).toMatch(new RegExp(`^id: +${ids.failed}\\nserial: +NODE-4\\nhostname: +node-4\\n`));
    expect(out).toMatch(/^state: +quarantined$/m);
    expect(out).toMatch(/^EK cert: +- \(imported by ek_pub_hash\)$/m);
    expect(out).toMatch(/^first attested: +\d{4}-\d\d-\d\d \d\d:\d\dZ$/m);
    expect(out).toMatch(new RegExp(`^last failure: +\\S+ \\S+ attestation\\.pcr-mismatch: PCR 4 differs from the policy of rack-b \\(registration ${registrationId}\\)$`, 'm'));
    expect(out).toContain('\nwhy it failed:\n  PCR 4: event #12 EV_EFI_BOOT_SERVICES_APPLICATION digest differs\n');
    expect(out).toMatch(/\nhistory:\nAT +FROM +TO +BY +REASON\n/);
    expect(out).toMatch(/^\S+ \S+ +attesting +quarantined +system:attestation +PCR 4 differs$/m);
    expect(out.split('\n').filter((l) => / system:attestation /.test(l))).toHaveLength(4);

    const json = JSON.parse(cli('machines', 'show', ids.failed!, '--json').stdout) as { serial: string; history: unknown[]; lastFailure: { explanation: string[] } };
    expect(json).toMatchObject({ serial: 'NODE-4', lastFailure: { explanation: ['PCR 4: event #12 EV_EFI_BOOT_SERVICES_APPLICATION digest differs'] } });
    expect(json.history).toHaveLength(4);

    const never = cli('machines', 'show', 'NODE-3').stdout;
    expect(never).toMatch(/^last attested: +never$/m);
    expect(never).toMatch(/^certified key: +none$/m);
    expect(cli('machines', 'keys', 'NODE-3')).toMatchObject({ status: 0, stderr: '', stdout: '0 key(s)\n' });
    expect(cli('machines', 'keys', 'NODE-404')).toMatchObject({ status: 2, stdout: '', stderr: 'rackseal: machines keys: no machine NODE-404\n' });
    expect(never).not.toContain('last failure');
    expect(never).toContain('\nhistory: no state changes since the import\n');
  });

  it('show refuses an unknown machine and text that is neither an id nor a serial, naming the command', () => {
    expect(cli('machines', 'show', 'NODE-404')).toMatchObject({ status: 2, stdout: '', stderr: 'rackseal: machines show: no machine NODE-404\n' });
    const bad = cli('machines', 'show', 'x\u001b[2J');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^rackseal: machines show: "x\\+u001b\[2J" is neither a machine id \(UUID\) nor a serial/);
    expect(bad.stderr).not.toContain('\u001b');
    expect(cli('machines', 'show', '..')).toMatchObject({ status: 2, stderr: 'rackseal: machines show: ".." is not the machine id (UUID) or its serial\n' });
  });

  it('revoke revokes with the reason; a second revoke exits 0 saying nothing changed; --json gives the API answer', () => {
    const first = cli('machines', 'revoke', 'NODE-2', '--reason', 'motherboard replaced');
    expect([first.status, first.stderr, first.stdout]).toEqual([0, '', `revoked machine NODE-2 (${ids.stale}), was attested\n`]);
    const again = cli('machines', 'revoke', ids.stale!, '--reason', 'again');
    expect([again.status, again.stderr]).toEqual([0, '']);
    expect(again.stdout).toMatch(new RegExp(`^machine NODE-2 \\(${ids.stale}\\) was already revoked on \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\dZ by token:[0-9a-f-]{36}; nothing changed\\n$`));
    const json = JSON.parse(cli('machines', 'revoke', 'NODE-2', '--reason', 'third', '--json').stdout) as { changed: boolean; machine: { state: string; history: { reason: string }[] } };
    expect(json.changed).toBe(false);
    expect(json.machine.state).toBe('revoked');
    expect(json.machine.history.at(-1)!.reason).toBe('motherboard replaced');
    expect(listed(cli('machines', 'list', '--state', 'revoked', '--json'))).toEqual(['NODE-2']);
  });

  it('revoke refuses a missing or blank reason, an unknown machine and a token without inventory:write, changing nothing', () => {
    const missing = cli('machines', 'revoke', 'NODE-3');
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain("required option '--reason <text>' not specified");
    expect(cli('machines', 'revoke', 'NODE-3', '--reason', '  ')).toMatchObject({
      status: 2,
      stderr: 'rackseal: machines revoke: --reason must not be empty: say why the machine is revoked\n',
    });
    const control = cli('machines', 'revoke', 'NODE-3', '--reason', 'bad\u001b[31m');
    expect(control.status).toBe(2);
    expect(control.stderr).toBe('rackseal: machines revoke: reason must not contain control characters (found U+001B)\n');
    expect(cli('machines', 'revoke', 'NODE-404', '--reason', 'gone')).toMatchObject({ status: 2, stderr: 'rackseal: machines revoke: no machine NODE-404\n' });
    expect(cliAs(reader, 'machines', 'revoke', 'NODE-3', '--reason', 'gone')).toMatchObject({
      status: 2,
      stderr: 'rackseal: machines revoke: forbidden (403): this token lacks the "inventory:write" scope\n',
    });
    expect(listed(cliAs(reader, 'machines', 'list', '--state', 'imported', '--json'))).toEqual(['NODE-3']);
  });

  it('reattest asks the machine to attest again (pending until its next attestation, a repeat keeps the first); refusals name the command', async () => {
    const first = cli('machines', 'reattest', 'NODE-1');
    expect([first.status, first.stderr]).toEqual([0, '']);
    expect(first.stdout).toMatch(new RegExp(`^asked machine NODE-1 \\(${ids.fresh}\\) to attest again \\(requested \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\dZ\\)\n$`));
    const again = JSON.parse(cli('machines', 'reattest', ids.fresh!, '--json').stdout) as { machineId: string; serial: string; requestedAt: string };
    expect(again).toMatchObject({ machineId: ids.fresh, serial: 'NODE-1' });
    const [row] = (await ds.query('SELECT reattest_requested_at FROM machines WHERE id = $1', [ids.fresh])) as { reattest_requested_at: Date }[];
    expect(row!.reattest_requested_at.toISOString()).toBe(again.requestedAt);
    expect(minuteOf(again.requestedAt)).toBe(/requested (.+)\)/.exec(first.stdout)![1]);
    expect(cli('machines', 'reattest', 'NODE-2')).toMatchObject({ status: 2, stderr: expect.stringMatching(/^rackseal: machines reattest: .*revoked.*\n$/) });
    expect(cli('machines', 'reattest', 'NODE-404')).toMatchObject({ status: 2, stderr: 'rackseal: machines reattest: no machine NODE-404\n' });
    expect(cliAs(reader, 'machines', 'reattest', 'NODE-1')).toMatchObject({
      status: 2,
      stderr: 'rackseal: machines reattest: forbidden (403): this token lacks the "inventory:write" scope\n',
    });
  });
});
