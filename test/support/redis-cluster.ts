import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import IORedis from 'ioredis';
import { onWorkerExit } from './exit-guard';
import { freePort, isListening, LOCALHOST } from './free-port';
import { pollUntil } from './wait';

const run = promisify(execFile);

/** Redis Cluster's bus port is the client port + 10000 (Redis Cluster specification, "Cluster bus"). */
const BUS_OFFSET = 10000;

/**
 * A real three-master Redis Cluster of private redis-server processes (the local install's binary)
 * on free ports, its files in a temporary directory, built with `redis-cli --cluster create`. The
 * processes are killed on stop() and when the jest worker exits, whatever happened before.
 */
export class RedisCluster {
  private readonly children: ChildProcess[] = [];
  private readonly unregister: () => void;

  private constructor(
    private readonly dir: string,
    readonly ports: readonly number[],
  ) {
    this.unregister = onWorkerExit(() => this.children.forEach((c) => c.kill('SIGKILL')));
  }

  /** REDIS_CLUSTER_NODES for the cluster: every node as a seed. */
  get nodesVariable(): string {
    return this.ports.map((p) => `${LOCALHOST}:${p}`).join(',');
  }

  static async start(masters = 3): Promise<RedisCluster> {
    const ports: number[] = [];
    while (ports.length < masters) {
      const port = await freePort();
      if (port + BUS_OFFSET <= 65535 && !ports.includes(port) && !(await isListening(port + BUS_OFFSET))) {
        ports.push(port);
      }
    }
    const cluster = new RedisCluster(mkdtempSync(join(tmpdir(), 'rackseal-redis-cluster-')), ports);
    try {
      await cluster.create();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** A plain (non-cluster) client on one node: answers only for the slots that node owns. */
  node(port: number): IORedis {
    return new IORedis({ host: LOCALHOST, port, maxRetriesPerRequest: 1, lazyConnect: false });
  }

  /** The port of the master that owns `slot` (CLUSTER SHARDS would do; CLUSTER SLOTS is in every 7.x). */
  async ownerOf(slot: number): Promise<number> {
    const client = this.node(this.ports[0]!);
    try {
      const ranges = (await client.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, ...unknown[]], ...unknown[]][];
      const range = ranges.find(([from, to]) => slot >= from && slot <= to);
      if (range === undefined) {
        throw new Error(`no node owns slot ${slot}`);
      }
      return range[2][1];
    } finally {
      client.disconnect();
    }
  }

  private async create(): Promise<void> {
    for (const port of this.ports) {
      const child = spawn(
        'redis-server',
        [
          '--port', String(port),
          '--bind', LOCALHOST,
          '--dir', this.dir,
          '--cluster-enabled', 'yes',
          '--cluster-config-file', `nodes-${port}.conf`,
          '--cluster-node-timeout', '5000',
          '--appendonly', 'no',
          '--save', '',
        ],
        { stdio: 'ignore' },
      );
      this.children.push(child);
    }
    for (const port of this.ports) {
      const up = await pollUntil(() => isListening(port), (listening) => listening, 10_000, 50);
      if (!up) {
        throw new Error(`redis-server on port ${port} did not listen`);
      }
    }
    await run('redis-cli', ['--cluster', 'create', ...this.ports.map((p) => `${LOCALHOST}:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    // Every node must agree before a client may rely on the slot map.
    for (const port of this.ports) {
      const client = this.node(port);
      try {
        const info = await pollUntil(() => client.call('CLUSTER', 'INFO') as Promise<string>, (text) => text.includes('cluster_state:ok'), 20_000, 100);
        if (!info.includes('cluster_state:ok')) {
          throw new Error(`Redis Cluster node ${port} never reported cluster_state:ok:\n${info}`);
        }
      } finally {
        client.disconnect();
      }
    }
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.children.splice(0).map(async (child) => {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGKILL');
          await exited;
        }
      }),
    );
    this.unregister();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
