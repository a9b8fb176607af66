/**
 * The story `npm run demo` tells (README, "The two commands"), with real processes throughout:
 * manufacture → import → canary policy → secrets → agents → boot unlock → rotation → drift and
 * quarantine → approval of the new state → revocation → audit proof. Each step is checked against
 * what the control plane, the agents' files and cryptsetup say (steps.ts); the live table shows
 * every machine's progress (screen.ts).
 */
import type { DeliveryView } from '@rackseal/api-contracts';
import { randomBytes, X509Certificate } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Facts, type Installed, observe } from './observe';
import { kubernetesCa } from './kubernetes-ca';
import { DemoMachine, DISK_SECRET, KUBELET_SECRET, TLS_SECRET } from './demo-machine';
import { Operator } from './operator';
import { DONE, FAILED, type Screen } from './screen';
import type { Stack } from './stack';
import { check, Steps } from './steps';
import { runRacksealCliAsync } from './support/cli-runner';
import { LocalCa } from './support/local-ca';
import { type RunningProcess, startApp, startControlPlane } from './support/processes';
import { scratchQueuePrefix } from './support/queue-prefix';
import { createScratchDatabase, maintenanceUrlOf } from './support/scratch-database';
import { startSwtpms, type SwtpmMachine } from './support/swtpm';
import { pollUntil } from './support/wait';

const GROUP = 'workers';
const FLEET = [
  { serial: 'SN-A', hostname: 'node-a' },
  { serial: 'SN-B', hostname: 'node-b' },
  { serial: 'SN-C', hostname: 'node-c' },
] as const;
const CANARY = 'SN-A';
const DRIFTER = 'SN-C';
const REVOKED = 'SN-B';
const API_SERVER = 'https://10.0.0.1:6443';
/** How long a step waits for another process (an agent, the worker) before it fails. */
const WAIT_MS = 120_000;

export const STEP_TITLES = [
  'a demo vendor CA, three swtpm machines with EK certificates from it, fleet.csv',
  'two control-plane replicas and two workers, on a database and queue prefix of their own',
  'vendor CA and inventory imported with the CLI',
  'group PCR policy set by promoting a canary',
  'TLS, kubelet and disk secrets created',
  'agents running: every machine attested, key certified, TLS and kubelet installed, disk key delivered',
  'every LUKS2 image unlocks offline: rackseal-agent unlock | cryptsetup open --test-passphrase',
  'secrets rotated: new certificates installed, disk key generation 2 unlocks, the old keyslot gone',
  `PCR 4 extended on ${DRIFTER} (a new kernel): unlock refused, image shut, machine quarantined`,
  `new kernel approved (policy promote): ${DRIFTER} attested, its disk opens again, no new delivery`,
  `${REVOKED} revoked: its agent is refused and stops`,
  'audit log proven: signed checkpoint, inclusion proof of the revocation, verify',
  'clean-up: processes, swtpm, temporary files, database and queue prefix removed',
] as const;
export const CLEANUP_STEP = STEP_TITLES[12];

export interface DemoServices {
  /** Any database URL of the PostgreSQL server: the demo creates its own database beside it. */
  readonly databaseUrl: string;
  readonly redisUrl: string;
}

export class FleetDemo {
  private readonly machines: DemoMachine[] = [];
  private operator!: Operator;
  private tlsCaPem = '';
  private kubernetesCaPem = '';
  /** The TPMs of step 1, given their machines once the replicas they will talk to are up. */
  private tpms: SwtpmMachine[] = [];
  /** The drifting machine's deliveries before its PCR change, to prove the promote made none. */
  private deliveriesBefore: DeliveryView[] = [];
  /** The watcher keeps every column but the unlock one current; the unlock checks set that one. */
  private watching: NodeJS.Timeout | undefined;

  constructor(
    private readonly services: DemoServices,
    private readonly stack: Stack,
    private readonly screen: Screen,
    private readonly steps: Steps,
  ) {}

  async run(): Promise<void> {
    try {
      await this.steps.run(STEP_TITLES[0], () => this.manufacture());
      await this.steps.run(STEP_TITLES[1], () => this.startServices());
      await this.steps.run(STEP_TITLES[2], () => this.importFleet());
      await this.steps.run(STEP_TITLES[3], () => this.canaryPolicy());
      await this.steps.run(STEP_TITLES[4], () => this.createSecrets());
      this.watch();
      await this.steps.run(STEP_TITLES[5], () => this.startAgents());
      await this.steps.run(STEP_TITLES[6], () => this.unlockAll(1));
      await this.steps.run(STEP_TITLES[7], () => this.rotate());
      await this.steps.run(STEP_TITLES[8], () => this.drift());
      await this.steps.run(STEP_TITLES[9], () => this.approveNewKernel());
      await this.steps.run(STEP_TITLES[10], () => this.revoke());
      await this.steps.run(STEP_TITLES[11], () => this.proveAudit());
    } finally {
      clearInterval(this.watching);
      this.screen.snapshot();
    }
  }

  private machine(serial: string): DemoMachine {
    const found = this.machines.find((m) => m.serial === serial);
    check(found !== undefined, `no machine ${serial}`);
    return found;
  }

  private async manufacture(): Promise<string> {
    const ca = await LocalCa.create({ dir: join(this.stack.dir, 'vendor-ca') });
    this.stack.vendorCa = ca;
    const tpms = await startSwtpms(FLEET.length, { ca });
    for (const tpm of tpms) {
      this.stack.add({ label: `swtpm pid ${String(tpm.pid)}`, stop: () => tpm.stop(), get running() {
        return tpm.running;
      } });
    }
    const intermediate = new X509Certificate(await ca.intermediateCertPem());
    const rows = ['serial,asset_tag,hostname,group,ek_cert,ek_pub_hash'];
    for (const [i, tpm] of tpms.entries()) {
      const { serial, hostname } = FLEET[i]!;
      const ek = await tpm.rsaEkCertDer();
      check(new X509Certificate(ek).verify(intermediate.publicKey), `${serial}: the EK certificate is not signed by the vendor CA`);
      rows.push(`${serial},,${hostname},${GROUP},${ek.toString('base64')},`);
    }
    await writeFile(join(this.stack.dir, 'root.pem'), await ca.rootCertPem());
    await writeFile(join(this.stack.dir, 'intermediate.pem'), await ca.intermediateCertPem());
    await writeFile(join(this.stack.dir, 'fleet.csv'), `${rows.join('\n')}\n`);
    this.screen.log(`  vendor CA "${intermediate.subject.replace(/\n/g, ', ')}" issued by "${intermediate.issuer.replace(/\n/g, ', ')}"`);
    this.screen.log(`  swtpm ${tpms.map((t) => `${t.device} (pid ${String(t.pid)})`).join(', ')}`);
    this.tpms = tpms;
    return `3 TPMs manufactured, each EK certificate signed by the vendor CA; ${join(this.stack.dir, 'fleet.csv')}: ${rows.length - 1} machines in group ${GROUP}`;
  }

  private async startServices(): Promise<string> {
    const database = await this.stack.adoptDatabase(await createScratchDatabase(maintenanceUrlOf(this.services.databaseUrl), 'rackseal_demo_'));
    const prefix = this.stack.adoptQueuePrefix(scratchQueuePrefix(this.services.redisUrl, 'rackseal-demo'));
    this.screen.log(`  database ${database.name} on ${new URL(database.url).host}, queue prefix ${prefix.prefix} on ${new URL(this.services.redisUrl).host}, files in ${this.stack.dir}`);
    const env: NodeJS.ProcessEnv = {
      RACKSEAL_ENV: 'demo',
      DATABASE_URL: database.url,
      REDIS_URL: this.services.redisUrl,
      QUEUE_PREFIX: prefix.prefix,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'warn',
      // A master key of this run's own (never the demo environment's public development key).
      RACKSEAL_MASTER_KEY: randomBytes(32).toString('hex'),
    };
    // The first admin token comes straight from the database (README, "First steps"); it migrates it.
    this.screen.log('  $ rackseal token create --name demo-operator --scope admin   (the token goes to RACKSEAL_TOKEN, never to the screen)');
    const token = await runRacksealCliAsync(['token', 'create', '--name', 'demo-operator', '--scope', 'admin'], { env: { DATABASE_URL: database.url } });
    check(token.status === 0 && /^rks_\S+$/.test(token.stdout.trim()), `rackseal token create exited ${String(token.status)}: ${token.stderr.trim()}`);

    const adopt = (proc: RunningProcess, label: string): RunningProcess => {
      this.stack.add({ label: `${label} pid ${String(proc.child.pid)}`, stop: () => proc.stop('SIGTERM', 15_000), get running() {
        return proc.child.exitCode === null && proc.child.signalCode === null;
      } });
      return proc;
    };
    const startWorker = async (): Promise<RunningProcess> => {
      const worker = adopt(startApp('worker', { ...env, LOG_LEVEL: 'info' }), 'worker');
      await worker.waitForLog((l) => l.msg === 'worker ready');
      return worker;
    };
    const startReplica = async () => {
      const replica = await startControlPlane(env);
      adopt(replica.proc, 'control plane');
      return replica;
    };
    const [one, two, workerOne, workerTwo] = await Promise.all([startReplica(), startReplica(), startWorker(), startWorker()]);
    const replicas = [one, two];
    for (const replica of replicas) {
      const ready = await fetch(`${replica.baseUrl}/health/ready`);
      const body = (await ready.json()) as { status?: string };
      check(ready.status === 200 && body.status === 'ready', `${replica.baseUrl}/health/ready answered ${ready.status} ${JSON.stringify(body)}`);
    }
    this.operator = new Operator(one.baseUrl, token.stdout.trim(), (l) => this.screen.log(l), database.url);
    for (const [i, tpm] of this.tpms.entries()) {
      const { serial, hostname } = FLEET[i]!;
      const replica = replicas[i % 2]!;
      this.machines.push(await DemoMachine.create(this.stack.dir, serial, hostname, tpm, replica.baseUrl));
      this.screen.addMachine(serial, `replica ${(i % 2) + 1}`);
    }
    const pids = [one.proc, two.proc].map((p) => p.child.pid).join(', ');
    return `control planes (pids ${pids}) at ${one.baseUrl} and ${two.baseUrl}, both /health/ready 200; workers pids ${String(workerOne.child.pid)}, ${String(workerTwo.child.pid)} ready`;
  }

  private async importFleet(): Promise<string> {
    await this.operator.rackseal(['vendor-ca', 'add', join(this.stack.dir, 'root.pem'), join(this.stack.dir, 'intermediate.pem')]);
    await this.operator.rackseal(['inventory', 'import', join(this.stack.dir, 'fleet.csv')]);
    for (const m of this.machines) {
      const { state, group } = await this.operator.machine(m.serial);
      check(state === 'imported' && group === GROUP, `${m.serial} is ${state} in group ${String(group)}, not imported in ${GROUP}`);
      this.screen.setState(m.serial, state);
      this.screen.set(m.serial, 'imported', DONE);
    }
    return `the control plane holds ${this.machines.length} machines, imported, in group ${GROUP}`;
  }

  private async canaryPolicy(): Promise<string> {
    const canary = this.machine(CANARY);
    this.screen.log(`  ${CANARY} enrolls first: a group without a policy quarantines it and keeps its measurements`);
    const first = await canary.enroll();
    check(first.status === 1 && first.stderr.includes('attestation.no-policy'), `${CANARY}'s enroll exited ${String(first.status)}: ${first.stderr.trim()}`);
    this.screen.log(`    rackseal-agent enroll: ${first.stderr.trim().split('\n').find((l) => l.includes('attestation.no-policy'))}`);
    check((await this.operator.machine(CANARY)).state === 'quarantined', `${CANARY} is not quarantined`);
    this.screen.setState(CANARY, 'quarantined');
    await this.operator.rackseal(['policy', 'promote', GROUP, '--machine', CANARY, '--label', 'fresh boot']);
    const shown = await this.operator.rackseal(['policy', 'show', GROUP]);
    check(shown.stdout.includes('fresh boot') && shown.stdout.includes('enforce'), `policy show ${GROUP} does not show the enforced set "fresh boot"`);
    return `group ${GROUP} enforces ${CANARY}'s measured PCRs 0-7 as "fresh boot", signed as the group's approvals`;
  }

  private async createSecrets(): Promise<string> {
    // The cluster's Kubernetes CA, as an operator has it: the key goes to the CLI on stdin, never to a file.
    const ca = await kubernetesCa();
    const caCert = join(this.stack.dir, 'kubernetes-ca.crt');
    await writeFile(caCert, ca.certificatePem);
    this.kubernetesCaPem = ca.certificatePem;
    await this.operator.rackseal(['ca', 'import', '--kind', 'kubernetes', caCert, '-'], { input: ca.keyPem });
    ca.keyPem.fill(0);
    await this.operator.rackseal(['secrets', 'create', TLS_SECRET, '--kind', 'tls', '--group', GROUP, '--binding', 'certified-key', '--san', '{hostname}.workers.demo']);
    await this.operator.rackseal(['secrets', 'create', KUBELET_SECRET, '--kind', 'kubelet-client', '--group', GROUP, '--binding', 'certified-key', '--api-server', API_SERVER]);
    await this.operator.rackseal(['secrets', 'create', DISK_SECRET, '--kind', 'disk', '--group', GROUP, '--binding', 'pcr-sealed', '--size', '32']);
    const listed = await this.operator.rackseal(['secrets', 'list']);
    for (const name of [TLS_SECRET, KUBELET_SECRET, DISK_SECRET]) {
      check(listed.stdout.includes(name), `secrets list does not list ${name}`);
    }
    return `${TLS_SECRET} (tls, certified-key), ${KUBELET_SECRET} (kubelet-client, certified-key), ${DISK_SECRET} (disk, pcr-sealed) for group ${GROUP}`;
  }

  /** Keeps the table's columns up to date with what the control plane, the files and the agents say. */
  private watch(): void {
    let busy = false;
    this.watching = setInterval(() => {
      if (busy) {
        return;
      }
      busy = true;
      void Promise.all(this.machines.map((m) => this.refresh(m).catch(() => undefined))).finally(() => (busy = false));
    }, 1000);
  }

  /** What is true of the machine now, shown on its row. */
  private async refresh(m: DemoMachine): Promise<Facts> {
    const facts = await observe(m, this.operator, { tlsCaPem: this.tlsCaPem, kubernetesCaPem: this.kubernetesCaPem, apiServer: API_SERVER });
    this.screen.setState(m.serial, facts.state);
    if (facts.state !== 'imported') {
      this.screen.set(m.serial, 'attested', facts.everAttested ? DONE : '…');
    }
    if (facts.keyAlgorithm !== undefined) {
      this.screen.set(m.serial, 'key certified', `${DONE} ${facts.keyAlgorithm}`);
    }
    const cell = (x: Installed | undefined, label: (v: number) => string) =>
      x === undefined ? undefined : 'error' in x ? `${FAILED} check failed` : 'waiting' in x ? `… ${x.waiting}` : `${DONE} ${label(x.version)}`;
    const tls = cell(facts.tls, (v) => `v${v}`);
    const kubelet = cell(facts.kubelet, (v) => `v${v}`);
    const disk = cell(facts.disk, (g) => `gen ${g}`);
    if (tls !== undefined) {
      this.screen.set(m.serial, 'TLS', tls);
    }
    if (kubelet !== undefined) {
      this.screen.set(m.serial, 'kubelet', kubelet);
    }
    if (disk !== undefined) {
      this.screen.set(m.serial, 'disk key', disk);
    }
    return facts;
  }

  /** Polls the machine's facts until `done` holds; fails the step naming what was last seen. */
  private async until(m: DemoMachine, what: string, done: (f: Facts) => boolean): Promise<Facts> {
    const facts = await pollUntil(() => this.refresh(m), done, WAIT_MS, 500);
    check(done(facts), `${m.serial}: no ${what} within ${WAIT_MS / 1000} s (last seen: ${JSON.stringify(facts)}; agent: ${m.daemonTail()})`);
    return facts;
  }

  private async startAgents(): Promise<string> {
    const enrolled = await Promise.all(this.machines.map(async (m) => ({ m, run: await m.enroll() })));
    for (const { m, run } of enrolled) {
      check(run.status === 0, `${m.serial}: rackseal-agent enroll exited ${String(run.status)}: ${run.stderr.trim()}`);
    }
    // The cluster TLS CA exists once the first machine's TLS material was made (at its attestation).
    await pollUntil(() => this.operator.get<unknown>('/v1/cas/tls'), (r) => r.status === 200, WAIT_MS, 500);
    this.tlsCaPem = (await this.operator.rackseal(['ca', 'download', '--kind', 'tls'], { quiet: true })).stdout;
    check(this.tlsCaPem.includes('BEGIN CERTIFICATE'), 'ca download --kind tls printed no certificate');
    for (const m of this.machines) {
      this.stack.add(await m.startAgent());
      this.screen.log(`  rackseal-agent run on ${m.serial}: ${m.tpm.device} via ${m.server}, installs ${TLS_SECRET}, ${KUBELET_SECRET}, ${DISK_SECRET}`);
    }
    for (const m of this.machines) {
      await this.until(m, 'attestation, key, TLS, kubelet and disk key', (f) => f.state === 'attested' && f.keyAlgorithm !== undefined && ok(f.tls, 1) && ok(f.kubelet, 1) && ok(f.disk, 1));
    }
    return `3 machines attested with a certified TPM key; TLS pairs chain to the cluster TLS CA, kubelet credentials to the Kubernetes CA; each disk holds generation 1 in a keyslot and its token`;
  }

  /** Boot unlock of every machine still in the fleet: the pipe opens the image, the token holds `generation`. */
  private async unlockAll(generation: number): Promise<string> {
    for (const m of this.machines) {
      await this.unlocks(m, generation);
    }
    return `unlock wrote the 32-byte key from each image's token, offline; cryptsetup opened all 3 images with it (generation ${generation})`;
  }

  private async unlocks(m: DemoMachine, generation: number, note = ''): Promise<void> {
    const token = await m.token();
    check(token?.generation === generation, `${m.serial}: the image's token holds generation ${String(token?.generation)}, expected ${generation}`);
    const alone = await m.unlock();
    check(alone.status === 0 && alone.keyBytes === 32, `${m.serial}: rackseal-agent unlock exited ${String(alone.status)} with ${alone.keyBytes} bytes: ${alone.stderr.trim()}`);
    const opened = await m.opensAtBoot();
    this.screen.set(m.serial, 'LUKS2 unlock', opened === 0 ? `${DONE} gen ${generation}${note}` : `${FAILED} exit ${String(opened)}`);
    check(opened === 0, `${m.serial}: cryptsetup open --test-passphrase refused the key from unlock (exit ${String(opened)})`);
  }

  private async rotate(): Promise<string> {
    const before = new Map<string, Facts>();
    for (const m of this.machines) {
      before.set(m.serial, await this.refresh(m));
    }
    for (const name of [TLS_SECRET, KUBELET_SECRET, DISK_SECRET]) {
      const rotated = await this.operator.rackseal(['secrets', 'rotate', name, '--group', GROUP]);
      check(/3\/3 target\(s\) acked/.test(rotated.stdout), `secrets rotate ${name}: not every target acked (${rotated.stdout.trim()})`);
    }
    for (const m of this.machines) {
      const facts = await this.until(m, 'version 2 of every secret', (f) => ok(f.tls, 2) && ok(f.kubelet, 2) && ok(f.disk, 2));
      const old = before.get(m.serial)!;
      check(serialOf(facts.tls) !== serialOf(old.tls), `${m.serial}: the TLS certificate did not change`);
      check(serialOf(facts.kubelet) !== serialOf(old.kubelet), `${m.serial}: the kubelet certificate did not change`);
      const token = await m.token();
      const slots = await m.keyslots();
      check(slots.length === 2 && slots[0] === 0 && slots[1] === token?.keyslot, `${m.serial}: keyslots ${slots.join(',')}, expected the enrollment slot 0 and the new key's ${String(token?.keyslot)} only`);
      await this.unlocks(m, 2);
    }
    return 'each machine: new TLS and kubelet certificates (new serials) installed; disk key generation 2 in a new keyslot, the old one killed (slots: 0 + new), unlocks at boot';
  }

  private async drift(): Promise<string> {
    const m = this.machine(DRIFTER);
    this.deliveriesBefore = await this.operator.deliveries(DRIFTER);
    await m.tpm.extendPcr(4, 'sha256', randomBytes(32).toString('hex'));
    this.screen.log(`  ${DRIFTER} boots a new kernel: PCR 4 (sha256) extended`);
    const refused = await m.unlock();
    check(refused.status === 1 && refused.keyBytes === 0, `${DRIFTER}: unlock exited ${String(refused.status)} with ${refused.keyBytes} bytes after the PCR change`);
    check(/no approval for the current PCR state/.test(refused.stderr), `${DRIFTER}: unlock refused for another reason: ${refused.stderr.trim()}`);
    this.screen.log(`    rackseal-agent unlock: ${refused.stderr.trim()}`);
    const opened = await m.opensAtBoot();
    check(opened !== 0, `${DRIFTER}: the image opened although no approval covers the PCR state`);
    this.screen.set(DRIFTER, 'LUKS2 unlock', `${FAILED} refused`);
    await this.operator.rackseal(['machines', 'reattest', DRIFTER]);
    const facts = await this.until(m, 'quarantine', (f) => f.state === 'quarantined');
    const refusal = m.daemon.lines.find((l) => l.outcome === 'refused' && l.code === 'attestation.policy-mismatch');
    check(refusal !== undefined, `${DRIFTER}'s agent printed no policy-mismatch refusal`);
    return `unlock refused (exit 1, no key), cryptsetup kept the image shut (exit ${String(opened)}); the agent's attestation refused (attestation.policy-mismatch), ${DRIFTER} ${facts.state}`;
  }

  private async approveNewKernel(): Promise<string> {
    const m = this.machine(DRIFTER);
    await this.operator.rackseal(['policy', 'promote', GROUP, '--machine', DRIFTER, '--label', 'new kernel']);
    await this.until(m, 'attestation after the promote', (f) => f.state === 'attested');
    const token = await pollUntil(
      () => m.token(),
      (t) => approvalLabels(t?.approvals).includes('new kernel'),
      WAIT_MS,
      500,
    );
    check(approvalLabels(token?.approvals).includes('new kernel'), `${DRIFTER}: the image's token never got the "new kernel" approval (has ${approvalLabels(token?.approvals).join(', ')})`);
    await this.unlocks(m, 2, ' (new kernel)');
    const after = await this.operator.deliveries(DRIFTER);
    const summary = (d: typeof after) => d.map((x) => `${x.id} ${x.secret.name} v${x.secret.version} ${x.state}`).join('\n');
    check(summary(after) === summary(this.deliveriesBefore), `${DRIFTER}: the deliveries changed across the promote:\nbefore ${summary(this.deliveriesBefore)}\nafter ${summary(after)}`);
    return `${DRIFTER} attested in the approved state; its agent stored the approvals (${approvalLabels(token?.approvals).join(', ')}) in the token; the same sealed key (generation 2) opens the image; deliveries unchanged (${after.length}, none new)`;
  }

  private async revoke(): Promise<string> {
    const m = this.machine(REVOKED);
    await this.operator.rackseal(['machines', 'revoke', REVOKED, '--reason', 'decommissioned in the demo']);
    const code = await Promise.race([m.daemon.exited, new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), WAIT_MS).unref())]);
    check(code === 1, `${REVOKED}'s agent: ${String(code)} (expected exit 1)`);
    const last = m.daemon.lines.at(-1);
    check(last?.outcome === 'refused' && last.code === 'attestation.machine-revoked', `${REVOKED}'s agent's last line: ${JSON.stringify(last)}`);
    const facts = await this.until(m, 'revocation', (f) => f.state === 'revoked');
    return `${REVOKED} ${facts.state}; its agent's next attestation was refused (attestation.machine-revoked) and it exited 1`;
  }

  private async proveAudit(): Promise<string> {
    const records = await pollUntil(
      () => this.operator.auditRecords(),
      (r) => r.some((x) => x.action === 'machine.revoked' && x.seq !== null),
      WAIT_MS,
      500,
    );
    const revoked = records.find((x) => x.action === 'machine.revoked');
    check(revoked?.seq !== null && revoked?.seq !== undefined, 'the machine.revoked record was never sequenced into the Merkle tree');
    const seq = revoked.seq;
    // The checkpoint that covers it: the sequencer signs one within AUDIT_MAX_MERGE_DELAY_MS.
    await pollUntil(
      () => this.operator.get<{ treeSize: number }>('/v1/audit/checkpoint'),
      (c) => c.status === 200 && c.body.treeSize > seq,
      WAIT_MS,
      500,
    );
    const vkey = join(this.stack.dir, 'audit.vkey');
    const keys = await this.operator.rackseal(['audit', 'public-key']);
    await writeFile(vkey, keys.stdout.trim().split('\n')[0]!);
    const saved = join(this.stack.dir, 'audit.checkpoint');
    await this.operator.rackseal(['audit', 'checkpoint', '--save', saved, '--key', vkey]);
    const proof = await this.operator.rackseal(['audit', 'prove', String(seq), '--key', vkey]);
    check(proof.stdout.startsWith(`record ${seq} is in the log of size`), `audit prove ${seq}: ${proof.stdout.trim()}`);
    const verified = await this.operator.rackseal(['audit', 'verify', '--since', saved, '--key', vkey]);
    check(/audit log intact/.test(verified.stdout), `audit verify: ${verified.stdout.trim()}`);
    return `${records.length} records; the revocation (record ${seq}) proven in the signed tree by its inclusion proof; the log recomputed from PostgreSQL is intact and extends the saved checkpoint`;
  }
}

const ok = (x: Installed | undefined, version: number): boolean => x !== undefined && 'version' in x && x.version === version;
const serialOf = (x: Installed | undefined): string | undefined => (x !== undefined && 'serial' in x ? x.serial : undefined);

/** The labels of the approvals a token holds (an ApprovalsResponse, libs/node-api-contracts approvals.ts). */
function approvalLabels(approvals: Readonly<Record<string, unknown>> | undefined): string[] {
  const list = approvals?.approvals;
  return Array.isArray(list) ? list.map((a) => String((a as { label?: unknown }).label)) : [];
}
