import { type ChildProcess, spawn } from 'node:child_process';
import { onWorkerExit } from './exit-guard';
import { freePort, LOCALHOST } from './free-port';
import { redisAnswers } from './services';

/**
 * A private redis-server process (the binary of the local install) that a test may really stop and
 * start again on the same port, e.g. to watch readiness go down and come back.
 */
export class PrivateRedis {
  private child: ChildProcess | undefined;
  private readonly unregister: () => void;

  private constructor(readonly port: number) {
    this.unregister = onWorkerExit(() => this.child?.kill('SIGKILL'));
  }

  get url(): string {
    return `redis://${LOCALHOST}:${this.port}`;
  }

  static async start(): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort());
    await redis.start();
    return redis;
  }

  async start(): Promise<void> {
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', LOCALHOST, '--save', '', '--appendonly', 'no'], {
      stdio: 'ignore',
    });
    for (let i = 0; i < 100; i += 1) {
      if (await redisAnswers(this.url)) {
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`private redis-server on port ${this.port} did not answer`);
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child !== undefined && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
  }

  async dispose(): Promise<void> {
    await this.stop();
    this.unregister();
  }
}
