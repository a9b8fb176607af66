import { MachineTransitionError } from './machine-errors';
import { isLegalTransition, isMachineState, MACHINE_STATES, MACHINE_TRANSITIONS, type MachineState } from './machine-state';
import { MachinesRepository } from './machines.repository';

/** The whole table, written out: every (from, to) pair of the five states and whether it is an edge. */
const LEGAL: ReadonlySet<string> = new Set([
  'imported→attesting',
  'imported→revoked',
  'attesting→attested',
  'attesting→quarantined',
  'attesting→revoked',
  'attested→attesting',
  'attested→revoked',
  'quarantined→attesting',
  'quarantined→revoked',
]);

const PAIRS: [MachineState, MachineState][] = MACHINE_STATES.flatMap((from) => MACHINE_STATES.map((to): [MachineState, MachineState] => [from, to]));

describe('machine state machine', () => {
  it('has the five states of docs/architecture.md §3 and §4.3, in lifecycle order', () => {
    expect(MACHINE_STATES).toEqual(['imported', 'attesting', 'attested', 'quarantined', 'revoked']);
    expect(Object.keys(MACHINE_TRANSITIONS).sort()).toEqual([...MACHINE_STATES].sort());
  });

  it.each(PAIRS)('%s → %s is legal exactly when it is an edge', (from, to) => {
    expect(isLegalTransition(from, to)).toBe(LEGAL.has(`${from}→${to}`));
  });

  it('has no self-loops, nothing leaves revoked, and every state but revoked can be revoked', () => {
    for (const state of MACHINE_STATES) {
      expect(isLegalTransition(state, state)).toBe(false);
      expect(isLegalTransition('revoked', state)).toBe(false);
      expect(isLegalTransition(state, 'revoked')).toBe(state !== 'revoked');
    }
    // nothing goes back to imported: a machine is imported once
    expect(MACHINE_STATES.filter((s) => isLegalTransition(s, 'imported'))).toEqual([]);
  });

  it('reaches attested or quarantined only through attesting', () => {
    for (const state of MACHINE_STATES) {
      expect(isLegalTransition(state, 'attested')).toBe(state === 'attesting');
      expect(isLegalTransition(state, 'quarantined')).toBe(state === 'attesting');
    }
  });

  it('recognises its states and nothing else', () => {
    expect(MACHINE_STATES.every(isMachineState)).toBe(true);
    for (const other of ['', 'Imported', 'deleted', 'attested ', null, 3, undefined]) {
      expect(isMachineState(other)).toBe(false);
    }
  });

  it.each(PAIRS.filter(([from, to]) => !LEGAL.has(`${from}→${to}`)))(
    'refuses %s → %s with MachineTransitionError before touching the database',
    async (from, to) => {
      const noDatabase = { query: () => Promise.reject(new Error('the database was used')) };
      const machines = new MachinesRepository(noDatabase as never);
      const refused = machines.transition({ machineId: '018f0000-0000-7000-8000-000000000000', from, to, reason: 'test', actor: 'test' }, new Date(0));
      await expect(refused).rejects.toBeInstanceOf(MachineTransitionError);
      await expect(refused).rejects.toMatchObject({ from, to, message: `a machine cannot go from ${from} to ${to}` });
    },
  );
});
