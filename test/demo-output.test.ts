/**
 * The demo's output without running the demo: the table redrawn in place on a terminal (erasing
 * exactly the rows it drew, wrapped ones included), progress lines elsewhere; and the summary's
 * marks for steps that held, failed, never ran or were interrupted.
 */
import { Screen } from '../demo/screen';
import { check, CheckFailed, Steps } from '../demo/steps';

function output(isTTY: boolean, columns?: number): { out: { write(t: string): void; isTTY: boolean; columns?: number }; text: () => string } {
  let text = '';
  return { out: { write: (t: string) => void (text += t), isTTY, ...(columns === undefined ? {} : { columns }) }, text: () => text };
}

describe('the demo screen', () => {
  it('off a terminal: one progress line per changed cell, nothing for an unchanged one, the table on request', () => {
    const { out, text } = output(false);
    const screen = new Screen(out);
    screen.addMachine('SN-A', 'replica 1');
    screen.set('SN-A', 'TLS', '✓ v1');
    screen.set('SN-A', 'TLS', '✓ v1');
    screen.setState('SN-A', 'attested');
    screen.log('a line');
    expect(text()).toBe('  SN-A  TLS: ✓ v1\n  SN-A  state: attested\na line\n');
    screen.snapshot();
    expect(text()).toMatch(/machine +via +state +imported +attested +key certified +TLS +kubelet +disk key +LUKS2 unlock\n/);
    expect(text()).toMatch(/SN-A +replica 1 +attested +· +· +· +✓ v1 +· +· +·\n/);
    expect(text()).not.toContain('\x1b[');
  });

  it('on a terminal: a log line erases the table (cursor up its rows, erase below), then draws it again under the line', () => {
    const { out, text } = output(true);
    const screen = new Screen(out);
    screen.addMachine('SN-A', 'replica 1');
    const table = text();
    const rows = table.split('\n').length - 1;
    screen.log('hello');
    expect(text()).toBe(`${table}\x1b[${rows}A\x1b[Jhello\n${table}`);
  });

  it('on a narrow terminal: a wrapped table line counts as the rows it took', () => {
    const { out, text } = output(true, 20);
    const screen = new Screen(out);
    screen.addMachine('SN-A', 'replica 1');
    const table = text();
    const rows = table
      .split('\n')
      .slice(0, -1)
      .reduce((n, line) => n + Math.max(1, Math.ceil([...line].length / 20)), 0);
    screen.set('SN-A', 'kubelet', '✓ v1');
    expect(text().slice(table.length)).toMatch(new RegExp(`^\\x1b\\[${rows}A\\x1b\\[J`));
  });

  it('frozen: cells stop changing and nothing is redrawn', () => {
    const { out, text } = output(true);
    const screen = new Screen(out);
    screen.addMachine('SN-A', 'replica 1');
    screen.freeze();
    const before = text();
    screen.set('SN-A', 'TLS', '✓ v1');
    screen.log('after');
    expect(text()).toBe(`${before}after\n`);
  });
});

describe('the demo steps', () => {
  it('marks each step ✓, ✗ with its reason, not run, or interrupted; all passed only when every step held', async () => {
    const logged: string[] = [];
    const steps = new Steps(['one', 'two', 'three', 'four'], (l) => logged.push(l));
    await steps.run('one', () => Promise.resolve('fine'));
    await expect(
      steps.run('two', () => {
        check(1 > 2, 'two went wrong');
        return Promise.resolve('never');
      }),
    ).rejects.toBeInstanceOf(CheckFailed);
    expect(steps.allPassed).toBe(false);
    expect(steps.summary()).toEqual(['', 'summary', '  ✓  1. one', '  ✗  2. two: two went wrong', '  –  3. three (not run)', '  –  4. four (not run)']);
    expect(logged).toEqual(['', '▶ one', '  ✓ fine', '', '▶ two', '  ✗ two went wrong']);

    let release: () => void = () => undefined;
    const running = steps.run('three', () => new Promise<string>((resolve) => (release = () => resolve('late'))));
    steps.interrupt();
    await steps.run('four', () => Promise.resolve('cleaned'));
    release();
    await running;
    expect(steps.summary().slice(4)).toEqual(['  –  3. three (interrupted)', '  ✓  4. four']);
  });

  it('all passed when every step held', async () => {
    const steps = new Steps(['one'], () => undefined);
    await steps.run('one', () => Promise.resolve('ok'));
    expect(steps.allPassed).toBe(true);
    await expect(steps.run('other', () => Promise.resolve('x'))).rejects.toThrow('unknown step "other"');
  });
});
