/**
 * What is true of one machine now, each fact checked where it lives: its state and certified key as
 * the control plane reports them, the TLS and kubelet files the agent installed (certificates
 * verified against the cluster CAs, keys matched), the disk key's generation in the agent's report
 * and in the image's LUKS2 token. The live table and the steps' checks both read these.
 */
import { DemoMachine, DISK_SECRET, KUBELET_SECRET, TLS_SECRET } from './demo-machine';
import type { Operator } from './operator';

/**
 * A secret version as installed and checked (a certificate's serial), or why the check failed, or
 * what it still waits for (a disk's token is rewritten after the agent's line of a rotation).
 */
export type Installed = { readonly version: number; readonly serial?: string } | { readonly error: string } | { readonly waiting: string };

export interface Facts {
  readonly state: string;
  readonly everAttested: boolean;
  /** The live certified TPM key's algorithm, once the machine has one. */
  readonly keyAlgorithm?: string;
  readonly tls?: Installed;
  readonly kubelet?: Installed;
  /** `version` is the disk key's generation. */
  readonly disk?: Installed;
}

export interface ClusterCas {
  readonly tlsCaPem: string;
  readonly kubernetesCaPem: string;
  readonly apiServer: string;
}

export async function observe(m: DemoMachine, operator: Operator, cas: ClusterCas): Promise<Facts> {
  const machine = await operator.machine(m.serial);
  const everAttested = machine.firstAttestedAt !== null;
  const key = everAttested ? await operator.liveKey(m.serial) : undefined;
  const facts: Facts = { state: machine.state, everAttested, ...(key === undefined ? {} : { keyAlgorithm: key.algorithm }) };
  const daemon = m.startedAgent;
  if (daemon === undefined || cas.tlsCaPem === '') {
    return facts;
  }
  const checked = async (version: number | undefined, serialOf: () => Promise<string>): Promise<Installed | undefined> => {
    if (version === undefined) {
      return undefined;
    }
    try {
      return { version, serial: await serialOf() };
    } catch (error) {
      return { error: (error as Error).message };
    }
  };
  const latest = (secret: string) => daemon.lines.filter((l) => l.outcome === 'delivered' && l.secret === secret).at(-1);
  const tls = await checked(latest(TLS_SECRET)?.version, () => m.checkTls(cas.tlsCaPem));
  const kubelet = await checked(latest(KUBELET_SECRET)?.version, () => m.checkKubelet(cas.kubernetesCaPem, cas.apiServer));
  const generation = latest(DISK_SECRET)?.disk?.generation;
  let disk: Installed | undefined;
  if (generation !== undefined) {
    const token = await m.token();
    disk = token?.generation === generation ? { version: generation } : { waiting: `token gen ${String(token?.generation)}` };
  }
  return { ...facts, ...(tls === undefined ? {} : { tls }), ...(kubelet === undefined ? {} : { kubelet }), ...(disk === undefined ? {} : { disk }) };
}
