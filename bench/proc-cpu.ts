import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * CPU time of processes and of the whole machine from /proc (proc(5)): a process's utime + stime
 * (fields 14 and 15 of /proc/<pid>/stat, in clock ticks), and the machine's busy time (every field
 * of /proc/stat's `cpu` line but idle and iowait). Sampled before and after a run, so a benchmark
 * can charge each process its CPU per operation without instrumenting it.
 */
const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** CPU milliseconds `pid` has used so far, or undefined when it has exited. */
export function processCpuMs(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is parenthesised and may contain spaces: split after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}

/** Busy CPU milliseconds of the whole machine, all cores summed. */
export function machineBusyMs(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const [, ...values] = line.trim().split(/\s+/).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = values;
  return ((user + nice + system + irq + softirq + steal) * 1000) / TICKS_PER_SECOND;
}

/** CPU used by a set of processes between `take()` and `since()`; processes gone by then count nothing. */
export class CpuSample {
  private readonly before = new Map<number, number>();

  constructor(readonly pids: readonly number[]) {
    for (const pid of pids) {
      const ms = processCpuMs(pid);
      if (ms !== undefined) {
        this.before.set(pid, ms);
      }
    }
  }

  /** Milliseconds of CPU the processes used since the sample was taken. */
  usedMs(): number {
    let total = 0;
    for (const [pid, before] of this.before) {
      const now = processCpuMs(pid);
      if (now !== undefined) {
        total += now - before;
      }
    }
    return total;
  }
}
