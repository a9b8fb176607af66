import type { MachineState } from '@rackseal/api-contracts';

/** A symbol per state, so the state reads without colour (the word is always there too). */
const SYMBOL: Record<MachineState, string> = {
  imported: '○',
  attesting: '◐',
  attested: '✓',
  quarantined: '⚠',
  revoked: '✕',
};

/** A machine's state as text with a symbol; the colour (class) only repeats what the text says. */
export function StateLabel({ state }: { state: MachineState }) {
  return (
    <span class={`state state-${state}`}>
      <span aria-hidden="true">{SYMBOL[state]} </span>
      {state}
    </span>
  );
}
