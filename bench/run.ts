import 'reflect-metadata';
import { cpus, totalmem } from 'node:os';
import { agentStartupBench } from './agent-startup.bench';
import { attestationBench } from './attestation.bench';
import { auditAppendBench } from './audit-append.bench';
import { deliveryBench } from './delivery.bench';
import { fuzzBench } from './fuzz.bench';
import { imaBench } from './ima.bench';
import { inventoryImportBench } from './inventory-import.bench';
import { masterKeyBench } from './master-key.bench';
import { rateLimitBench } from './rate-limit.bench';
import { tpm2Bench } from './tpm2.bench';
import { tpm2ClientBench } from './tpm2-client.bench';
import { uiRenderBench } from './ui-render.bench';
import { unlockBench } from './unlock.bench';
import { wrapBench } from './wrap.bench';

/**
 * `npm run bench [-- NAME…]`: runs the named benchmarks (all by default) and prints markdown to paste
 * into bench/README.md, headed by the machine and date.
 */
const BENCHES: Record<string, () => Promise<string>> = {
  tpm2: () => tpm2Bench(),
  'tpm2-client': () => tpm2ClientBench(),
  fuzz: () => fuzzBench(),
  'inventory-import': () => inventoryImportBench(),
  'agent-startup': () => agentStartupBench(),
  'audit-append': () => auditAppendBench(),
  'master-key': () => masterKeyBench(),
  attestation: () => attestationBench(),
  wrap: () => wrapBench(),
  unlock: () => unlockBench(),
  delivery: () => deliveryBench(),
  'rate-limit': () => rateLimitBench(),
  'ui-render': () => uiRenderBench(),
  ima: () => imaBench(),
};

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  const names = wanted.length > 0 ? wanted : Object.keys(BENCHES);
  const unknown = names.filter((n) => !(n in BENCHES));
  if (unknown.length > 0) {
    process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}; known: ${Object.keys(BENCHES).join(', ')}\n`);
    process.exit(2);
  }
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  process.stdout.write(`Machine: ${cpus().length} × ${cpu}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; ${new Date().toISOString().slice(0, 10)}\n\n`);
  for (const name of names) {
    process.stdout.write(`### ${name}\n\n${await BENCHES[name]!()}\n\n`);
  }
}

main().then(
  // An in-process control plane leaves MessagePorts open after close() (rate-limit bench): the
  // results are printed, so end here rather than wait for them.
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
