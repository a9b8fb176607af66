/**
 * Runtime-policy `excludes`: Python regular expressions that Keylime joins as `(p1)|(p2)|…` and
 * applies with `re.match` (anchored at the start of the path, not at its end). Running them with
 * JavaScript's backtracking RegExp would let one policy pattern such as `(a|a)*$` or `.*.*.*x` take
 * exponential or high-polynomial time on a long path — a policy author (or whoever can write one)
 * could stall every re-attestation. So they are compiled here, by a small Thompson construction,
 * into one NFA that is simulated over the path's code points through a lazily built DFA (see
 * ExcludeMatcher): one table lookup per character once the states are known, and at worst
 * O(path length × NFA size) — which for a bounded NFA (MAX_NFA_NODES) is still seconds per 4 KiB
 * path, so what one attestation round may spend building states is counted and bounded
 * (EXCLUDE_ROUND_VISITS; the round fails beyond it).
 *
 * The syntax is the subset of Python's `re` that needs no backtracking: literals, `.`, classes
 * (`[…]`, `[^…]`, ranges, `\d \w \s` and their negations — Unicode, as Python's str patterns),
 * groups `(…)`, `(?:…)`, `(?P<name>…)`, alternation, `* + ? {m} {m,} {m,n} {,n}` and their lazy
 * forms (laziness does not change whether a match exists), anchors `^ $ \A \Z`, escapes
 * `\t \n \r \f \v \a \xHH \uHHHH \UHHHHHHHH` and escaped punctuation. Refused, with the pattern and
 * position named: backreferences, lookaround, conditionals, atomic groups and possessive
 * quantifiers, inline flags, `\b \B`, unknown escapes, and an empty pattern (which would exclude
 * every file).
 */

export const MAX_EXCLUDE_PATTERNS = 1024;
export const MAX_EXCLUDE_PATTERN_LENGTH = 1024;
/** Upper bound of a counted repetition ({m,n}), as a bound on the NFA it expands to. */
export const MAX_REPEAT = 1000;
/** All patterns together compile to at most this many NFA nodes. */
export const MAX_NFA_NODES = 100_000;

/**
 * NFA states one attestation round may visit building DFA states for its entries' paths (a budget
 * counted, not timed: 0.2 s of one core at most). A policy's usual excludes use a few thousand for a
 * 100,000-entry list, and nothing once the states are cached (per compiled policy, across rounds);
 * only a pattern whose DFA blows up (`.*a.{1000}`) against paths that feed it reaches it.
 */
export const EXCLUDE_ROUND_VISITS = 2_000_000;

/** What a round may still spend on the excludes (ExcludeMatcher.match subtracts from it). */
export interface ExcludeBudget {
  nfaVisits: number;
}

/** The excludes needed more than the round's budget (EXCLUDE_ROUND_VISITS) to decide the paths of a list. */
export class ExcludeBudgetError extends Error {
  constructor(readonly path: string) {
    super(`the excludes need more than ${EXCLUDE_ROUND_VISITS} NFA steps to decide this list's paths`);
    this.name = 'ExcludeBudgetError';
  }
}

export class ExcludePatternError extends Error {
  constructor(
    readonly pattern: number,
    readonly position: number,
    readonly reason: string,
  ) {
    super(`excludes[${pattern}] at ${position}: ${reason}`);
    this.name = 'ExcludePatternError';
  }
}

/** A set of code points: ranges (inclusive pairs), Unicode categories, possibly negated. */
interface CharClass {
  readonly ranges: number[];
  readonly categories: ('d' | 'w' | 's' | 'D' | 'W' | 'S')[];
  readonly negated: boolean;
}

type Node =
  | { readonly kind: 'class'; readonly cls: CharClass }
  | { readonly kind: 'cat'; readonly items: Node[] }
  | { readonly kind: 'alt'; readonly options: Node[] }
  | { readonly kind: 'repeat'; readonly node: Node; readonly min: number; readonly max: number }
  | { readonly kind: 'start' }
  | { readonly kind: 'end' };

const DIGIT = /\p{Nd}/u;
const WORD = /[\p{L}\p{N}_\p{Mn}]/u;
// Beyond ASCII (handled in inCategory), Python's str.isspace also counts U+0085, and not U+FEFF.
const SPACE = /(?!\uFEFF)[\s\u0085]/u;

function inCategory(category: CharClass['categories'][number], cp: number): boolean {
  if (cp < 128) {
    // ASCII fast path (Python's \d, \w, \s agree with these on ASCII).
    switch (category) {
      case 'd':
        return cp >= 0x30 && cp <= 0x39;
      case 'D':
        return !(cp >= 0x30 && cp <= 0x39);
      case 'w':
        return (cp >= 0x30 && cp <= 0x39) || (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a) || cp === 0x5f;
      case 'W':
        return !inCategory('w', cp);
      case 's':
        return cp === 0x20 || (cp >= 0x09 && cp <= 0x0d) || (cp >= 0x1c && cp <= 0x1f);
      case 'S':
        return !inCategory('s', cp);
    }
  }
  const ch = String.fromCodePoint(cp);
  switch (category) {
    case 'd':
      return DIGIT.test(ch);
    case 'D':
      return !DIGIT.test(ch);
    case 'w':
      return WORD.test(ch);
    case 'W':
      return !WORD.test(ch);
    case 's':
      return SPACE.test(ch);
    case 'S':
      return !SPACE.test(ch);
  }
}

function classHas(cls: CharClass, cp: number): boolean {
  let found = false;
  for (let i = 0; i < cls.ranges.length && !found; i += 2) {
    found = cp >= cls.ranges[i]! && cp <= cls.ranges[i + 1]!;
  }
  for (let i = 0; i < cls.categories.length && !found; i += 1) {
    found = inCategory(cls.categories[i]!, cp);
  }
  return found !== cls.negated;
}

const ANY_BUT_NEWLINE: CharClass = { ranges: [0x0a, 0x0a], categories: [], negated: true };
const literal = (cp: number): Node => ({ kind: 'class', cls: { ranges: [cp, cp], categories: [], negated: false } });

/** Recursive-descent parser of one pattern into the syntax tree above. */
class PatternParser {
  private at = 0;
  private readonly cps: number[];
  private depth = 0;

  constructor(
    private readonly source: string,
    private readonly index: number,
  ) {
    this.cps = Array.from(source, (ch) => ch.codePointAt(0)!);
  }

  private fail(reason: string, position = this.at): never {
    throw new ExcludePatternError(this.index, position, reason);
  }

  private peek(offset = 0): number | undefined {
    return this.cps[this.at + offset];
  }

  parse(): Node {
    if (this.cps.length === 0) {
      this.fail('an empty pattern matches every path (it would exclude everything)');
    }
    const node = this.alternation();
    if (this.at < this.cps.length) {
      this.fail(this.peek() === 0x29 ? 'unbalanced parenthesis' : 'unexpected character');
    }
    return node;
  }

  private alternation(): Node {
    const options = [this.concatenation()];
    while (this.peek() === 0x7c) {
      this.at += 1;
      options.push(this.concatenation());
    }
    return options.length === 1 ? options[0]! : { kind: 'alt', options };
  }

  private concatenation(): Node {
    const items: Node[] = [];
    for (let c = this.peek(); c !== undefined && c !== 0x7c && c !== 0x29; c = this.peek()) {
      items.push(this.repetition());
    }
    return { kind: 'cat', items };
  }

  private repetition(): Node {
    const atomAt = this.at;
    const c = this.peek()!;
    if (c === 0x2a || c === 0x2b || c === 0x3f || (c === 0x7b && this.quantifierAt() !== null)) {
      this.fail('nothing to repeat', atomAt);
    }
    let node = this.atom();
    let quantified = false;
    for (;;) {
      const q = this.peek();
      let min: number;
      let max: number;
      if (q === 0x2a) {
        [min, max] = [0, Infinity];
        this.at += 1;
      } else if (q === 0x2b) {
        [min, max] = [1, Infinity];
        this.at += 1;
      } else if (q === 0x3f) {
        [min, max] = [0, 1];
        this.at += 1;
      } else if (q === 0x7b && this.quantifierAt() !== null) {
        const counted = this.quantifierAt()!;
        [min, max] = [counted.min, counted.max];
        this.at = counted.end;
      } else {
        return node;
      }
      if (quantified) {
        this.fail('multiple repeat');
      }
      if (node.kind === 'start' || node.kind === 'end') {
        this.fail('nothing to repeat');
      }
      quantified = true;
      if (this.peek() === 0x3f) {
        this.at += 1; // lazy: the same set of matches
      } else if (this.peek() === 0x2b) {
        this.fail('possessive quantifiers are not supported');
      }
      node = { kind: 'repeat', node, min, max };
    }
  }

  /** `{m}`, `{m,}`, `{,n}`, `{m,n}` at the cursor, or null when the brace is a literal (as in Python). */
  private quantifierAt(): { min: number; max: number; end: number } | null {
    let i = this.at + 1;
    const digits = (): string => {
      let text = '';
      while (this.cps[i] !== undefined && this.cps[i]! >= 0x30 && this.cps[i]! <= 0x39) {
        text += String.fromCodePoint(this.cps[i]!);
        i += 1;
      }
      return text;
    };
    const low = digits();
    let high = low;
    if (this.cps[i] === 0x2c) {
      i += 1;
      high = digits();
      if (high === '') {
        high = 'inf';
      }
    }
    if (this.cps[i] !== 0x7d || (low === '' && high === 'inf')) {
      return null;
    }
    const min = low === '' ? 0 : Number(low);
    const max = high === 'inf' ? Infinity : Number(high);
    if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) {
      this.fail(`a counted repetition above ${MAX_REPEAT}`);
    }
    if (max < min) {
      this.fail('min repeat greater than max repeat');
    }
    return { min, max, end: i + 1 };
  }

  private atom(): Node {
    const c = this.peek()!;
    this.at += 1;
    switch (c) {
      case 0x28:
        return this.group();
      case 0x5b:
        return { kind: 'class', cls: this.charClass() };
      case 0x2e:
        return { kind: 'class', cls: ANY_BUT_NEWLINE };
      case 0x5e:
        return { kind: 'start' };
      case 0x24:
        return { kind: 'end' };
      case 0x5c:
        return this.escape(false) as Node;
      default:
        return literal(c);
    }
  }

  private group(): Node {
    const open = this.at - 1;
    if (this.peek() === 0x3f) {
      const kind = String.fromCodePoint(this.peek(1) ?? 0x20);
      if (kind === ':') {
        this.at += 2;
      } else if (kind === 'P' && this.peek(2) === 0x3c) {
        const close = this.cps.indexOf(0x3e, this.at);
        if (close === -1) {
          this.fail('unterminated group name');
        }
        this.at = close + 1;
      } else {
        const what: Record<string, string> = { '=': 'lookahead', '!': 'lookahead', '<': 'lookbehind', '(': 'conditional', '>': 'atomic group', P: 'backreference', '#': 'comment' };
        this.fail(`${what[kind] ?? 'inline flag'} "(?${kind}" is not supported (it needs backtracking or changes the matching rules)`, open);
      }
    }
    this.depth += 1;
    if (this.depth > 64) {
      this.fail('groups nested deeper than 64');
    }
    const inner = this.alternation();
    this.depth -= 1;
    if (this.peek() !== 0x29) {
      this.fail('missing ), unterminated subpattern', open);
    }
    this.at += 1;
    return inner;
  }

  /** An escape after `\`: a node, or inside a class a code point or category. */
  private escape(inClass: boolean): Node | number | CharClass['categories'][number] {
    const at = this.at - 1;
    const c = this.peek();
    if (c === undefined) {
      this.fail('bad escape (end of pattern)', at);
    }
    this.at += 1;
    const ch = String.fromCodePoint(c);
    if ('dDwWsS'.includes(ch)) {
      const category = ch as CharClass['categories'][number];
      return inClass ? category : { kind: 'class', cls: { ranges: [], categories: [category], negated: false } };
    }
    if (!inClass && ch === 'A') {
      return { kind: 'start' };
    }
    if (!inClass && ch === 'Z') {
      return { kind: 'end' };
    }
    const simple: Record<string, number> = { t: 9, n: 10, v: 11, f: 12, r: 13, a: 7 };
    let cp: number | undefined = simple[ch];
    if (ch === 'x' || ch === 'u' || ch === 'U') {
      const width = ch === 'x' ? 2 : ch === 'u' ? 4 : 8;
      const hex = String.fromCodePoint(...this.cps.slice(this.at, this.at + width));
      if (!new RegExp(`^[0-9a-fA-F]{${width}}$`).test(hex)) {
        this.fail(`incomplete escape \\${ch}${hex}`, at);
      }
      cp = parseInt(hex, 16);
      if (cp > 0x10ffff) {
        this.fail('escape beyond U+10FFFF', at);
      }
      this.at += width;
    } else if (cp === undefined) {
      if (/[0-9]/.test(ch)) {
        this.fail(inClass ? 'octal escapes are not supported' : 'backreferences are not supported', at);
      }
      if (/[A-Za-z]/.test(ch)) {
        this.fail(ch === 'b' || ch === 'B' ? 'word boundaries are not supported' : `bad escape \\${ch}`, at);
      }
      cp = c;
    }
    return inClass ? cp : literal(cp);
  }

  private charClass(): CharClass {
    const open = this.at - 1;
    const cls: CharClass = { ranges: [], categories: [], negated: this.peek() === 0x5e };
    if (cls.negated) {
      this.at += 1;
    }
    let first = true;
    for (;;) {
      const c = this.peek();
      if (c === undefined) {
        this.fail('unterminated character set', open);
      }
      if (c === 0x5d && !first) {
        this.at += 1;
        return cls;
      }
      first = false;
      const low = this.classAtom();
      if (typeof low !== 'number') {
        cls.categories.push(low);
        continue;
      }
      if (this.peek() === 0x2d && this.peek(1) !== undefined && this.peek(1) !== 0x5d) {
        this.at += 1;
        const high = this.classAtom();
        if (typeof high !== 'number') {
          this.fail('bad character range');
        }
        if (high < low) {
          this.fail('bad character range (reversed)');
        }
        cls.ranges.push(low, high);
      } else {
        cls.ranges.push(low, low);
      }
    }
  }

  private classAtom(): number | CharClass['categories'][number] {
    const c = this.peek()!;
    this.at += 1;
    return c === 0x5c ? (this.escape(true) as number | CharClass['categories'][number]) : c;
  }
}

// NFA node kinds, in typed arrays for the simulation's inner loop.
const K_CLASS = 0;
const K_SPLIT = 1;
const K_START = 2;
const K_END = 3;
const K_ACCEPT = 4;
const K_JUMP = 5;

class NfaBuilder {
  kind: number[] = [];
  out1: number[] = [];
  out2: number[] = [];
  cls: (CharClass | null)[] = [];
  accepts: number[] = [];

  constructor(private readonly patternIndex: number) {}

  add(kind: number, cls: CharClass | null = null): number {
    if (this.kind.length >= MAX_NFA_NODES) {
      throw new ExcludePatternError(this.patternIndex, 0, `the excludes compile to more than ${MAX_NFA_NODES} states`);
    }
    this.kind.push(kind);
    this.out1.push(-1);
    this.out2.push(-1);
    this.cls.push(cls);
    this.accepts.push(-1);
    return this.kind.length - 1;
  }

  /** Compiles `node` so that it continues at `next`; returns its entry node. */
  compile(node: Node, next: number): number {
    switch (node.kind) {
      case 'class': {
        const n = this.add(K_CLASS, node.cls);
        this.out1[n] = next;
        return n;
      }
      case 'start':
      case 'end': {
        const n = this.add(node.kind === 'start' ? K_START : K_END);
        this.out1[n] = next;
        return n;
      }
      case 'cat': {
        let entry = next;
        for (let i = node.items.length - 1; i >= 0; i -= 1) {
          entry = this.compile(node.items[i]!, entry);
        }
        return entry;
      }
      case 'alt': {
        let entry = this.compile(node.options[node.options.length - 1]!, next);
        for (let i = node.options.length - 2; i >= 0; i -= 1) {
          const split = this.add(K_SPLIT);
          this.out1[split] = this.compile(node.options[i]!, next);
          this.out2[split] = entry;
          entry = split;
        }
        return entry;
      }
      case 'repeat': {
        let entry = next;
        if (node.max === Infinity) {
          // x* : split → (x → back to split) | next
          const split = this.add(K_SPLIT);
          const jump = this.add(K_JUMP);
          this.out1[jump] = split;
          this.out1[split] = this.compile(node.node, jump);
          this.out2[split] = next;
          entry = split;
        } else {
          for (let i = node.min; i < node.max; i += 1) {
            const split = this.add(K_SPLIT);
            this.out1[split] = this.compile(node.node, entry);
            this.out2[split] = next;
            entry = split;
          }
        }
        for (let i = 0; i < node.min; i += 1) {
          entry = this.compile(node.node, entry);
        }
        return entry;
      }
    }
  }
}

/**
 * DFA states a matcher keeps before it drops them all and builds again (RE2's answer to a cache that
 * fills): at most 2,048 × 128 ASCII transitions (1 MiB) per compiled policy, and MAX_DFA_CACHE_NODES.
 */
export const MAX_DFA_STATES = 2048;
/** NFA states all cached DFA states hold together (each a set of them), so a cache of large sets stays a few MiB too. */
export const MAX_DFA_CACHE_NODES = 1_000_000;

/**
 * A compiled `excludes` list: `match(path)` tells which pattern (its index) excludes the path, if any.
 *
 * The NFA is simulated through a lazily built DFA (Thompson's simulation with its state sets cached,
 * as RE2 and Go's regexp do): each set of NFA states reached is built once and given an id, and the
 * transitions from it are remembered per code point, so a path costs one table lookup per character
 * once its states are known. Simulating the NFA alone costs O(path × active states) per path, and a
 * short pattern holds many states active at once — `(.*){1000}\x01` is 3,000 of them for every
 * character, seconds of the control plane's only thread per 4 KiB path, per entry, per attestation.
 * The DFA of such a pattern has a handful of states. Building a state still costs a walk of the NFA
 * (bounded by MAX_NFA_NODES), and a pattern whose DFA is exponential (`.*a.{20}`) builds one per
 * character at worst: the cache is then dropped at MAX_DFA_STATES and rebuilt, and the cost is the
 * NFA simulation's, bounded as before. `$` is decided where it can hold (the end, or before a final
 * newline) outside the cache, so the cached states do not depend on where they were reached.
 */
export class ExcludeMatcher {
  private readonly kind: Uint8Array;
  private readonly out1: Int32Array;
  private readonly out2: Int32Array;
  private readonly accepts: Int32Array;
  private readonly seen: Uint32Array;
  private generation = 0;
  private current: Int32Array;
  private next: Int32Array;
  private readonly stack: Int32Array;

  // The DFA cache: state id → its NFA states (sorted), the lowest pattern accepting in it (-1: none),
  // whether any NFA state in it reads a character; transitions for ASCII in a table, others in a Map.
  private readonly stateIds = new Map<string, number>();
  private stateNodes: Int32Array[] = [];
  private stateAccept: number[] = [];
  private stateLive: boolean[] = [];
  private asciiNext = new Int32Array(0);
  private readonly otherNext = new Map<number, number>();
  private initialState = -1;
  private cachedNodes = 0;
  private epoch = 0;
  private visits = 0;
  private built = 0;

  private constructor(
    builder: NfaBuilder,
    private readonly classes: (CharClass | null)[],
    private readonly start: number,
    readonly patterns: readonly string[],
  ) {
    const n = builder.kind.length;
    this.kind = Uint8Array.from(builder.kind);
    this.out1 = Int32Array.from(builder.out1);
    this.out2 = Int32Array.from(builder.out2);
    this.accepts = Int32Array.from(builder.accepts);
    this.seen = new Uint32Array(n);
    this.current = new Int32Array(n);
    this.next = new Int32Array(n);
    this.stack = new Int32Array(2 * n + 2);
  }

  /** Compiles the patterns; throws ExcludePatternError naming the first one refused. */
  static compile(patterns: readonly string[]): ExcludeMatcher {
    if (patterns.length > MAX_EXCLUDE_PATTERNS) {
      throw new ExcludePatternError(MAX_EXCLUDE_PATTERNS, 0, `more than ${MAX_EXCLUDE_PATTERNS} patterns`);
    }
    const builder = new NfaBuilder(0);
    const entries: number[] = [];
    patterns.forEach((pattern, index) => {
      if (pattern.length > MAX_EXCLUDE_PATTERN_LENGTH) {
        throw new ExcludePatternError(index, MAX_EXCLUDE_PATTERN_LENGTH, `longer than ${MAX_EXCLUDE_PATTERN_LENGTH} characters`);
      }
      const tree = new PatternParser(pattern, index).parse();
      const accept = builder.add(K_ACCEPT);
      builder.accepts[accept] = index;
      try {
        entries.push(builder.compile(tree, accept));
      } catch (error) {
        throw error instanceof ExcludePatternError ? new ExcludePatternError(index, 0, error.reason) : error;
      }
    });
    let start = -1;
    for (let i = entries.length - 1; i >= 0; i -= 1) {
      if (start === -1) {
        start = entries[i]!;
      } else {
        const split = builder.add(K_SPLIT);
        builder.out1[split] = entries[i]!;
        builder.out2[split] = start;
        start = split;
      }
    }
    return new ExcludeMatcher(builder, builder.cls, start, [...patterns]);
  }

  /**
   * The work done so far, counted (not timed): DFA states built and NFA states visited building them.
   * A path over known states adds nothing.
   */
  get cost(): { readonly dfaStates: number; readonly nfaVisits: number } {
    return { dfaStates: this.built, nfaVisits: this.visits };
  }

  /**
   * The index of the pattern that matches a prefix of `path` (Python's `re.match`), the lowest when
   * several do at the same length; undefined when none does. With a budget, the NFA states visited
   * building DFA states are subtracted from it, and ExcludeBudgetError thrown once it is spent.
   */
  match(path: string, budget?: ExcludeBudget): number | undefined {
    if (this.start === -1) {
      return undefined;
    }
    const length = path.length;
    let visits = this.visits;
    const spend = (): void => {
      if (budget !== undefined && this.visits !== visits) {
        budget.nfaVisits -= this.visits - visits;
        visits = this.visits;
        if (budget.nfaVisits < 0) {
          throw new ExcludeBudgetError(path);
        }
      }
    };
    let state = this.initial();
    spend();
    let position = 0;
    for (;;) {
      if (position === length || (position === length - 1 && path.charCodeAt(position) === 0x0a)) {
        const found = this.matchAtEnd(state, position, path, length);
        spend();
        return found;
      }
      const accept = this.stateAccept[state]!;
      if (accept !== -1) {
        return accept;
      }
      if (!this.stateLive[state]) {
        return undefined;
      }
      const cp = path.codePointAt(position)!;
      position += cp > 0xffff ? 2 : 1;
      state = this.transition(state, cp);
      spend();
    }
  }

  /** The state at position 0 (where `^` holds). */
  private initial(): number {
    if (this.initialState === -1) {
      this.generation += 1;
      const count = this.closure(this.start, true, false, this.current, 0);
      this.initialState = this.intern(this.current, count);
    }
    return this.initialState;
  }

  /** The state after reading `cp` in `state`: from the cache, else built (and remembered unless the cache was dropped meanwhile). */
  private transition(state: number, cp: number): number {
    const known = cp < 128 ? this.asciiNext[state * 128 + cp]! : (this.otherNext.get(state * 0x110000 + cp) ?? -1);
    if (known !== -1) {
      return known;
    }
    const count = this.step(this.stateNodes[state]!, this.stateNodes[state]!.length, cp, false, this.next);
    const epoch = this.epoch;
    const next = this.intern(this.next, count);
    if (epoch === this.epoch) {
      if (cp < 128) {
        this.asciiNext[state * 128 + cp] = next;
      } else {
        this.otherNext.set(state * 0x110000 + cp, next);
      }
    }
    return next;
  }

  /**
   * Where `$` may hold (the end, or before a final newline), outside the cache: the state's NFA
   * states with everything reachable past a `$`, then, before a final newline, one more step over it.
   */
  private matchAtEnd(state: number, position: number, path: string, length: number): number | undefined {
    const nodes = this.stateNodes[state]!;
    this.generation += 1;
    const generation = this.generation;
    let count = 0;
    for (let i = 0; i < nodes.length; i += 1) {
      this.seen[nodes[i]!] = generation;
      this.current[count++] = nodes[i]!;
    }
    for (let i = 0; i < nodes.length; i += 1) {
      if (this.kind[nodes[i]!] === K_END) {
        count = this.closure(this.out1[nodes[i]!]!, position === 0, true, this.current, count);
      }
    }
    const found = this.accepted(this.current, count);
    if (found !== undefined || position === length) {
      return found;
    }
    const after = this.step(this.current, count, 0x0a, true, this.next);
    return this.accepted(this.next, after);
  }

  /** The NFA states reached from `list` by reading `cp`, into `into`; returns their count. */
  private step(list: ArrayLike<number>, count: number, cp: number, passEnd: boolean, into: Int32Array): number {
    this.generation += 1;
    let nextCount = 0;
    for (let i = 0; i < count; i += 1) {
      const node = list[i]!;
      if (this.kind[node] === K_CLASS && classHas(this.classes[node]!, cp)) {
        nextCount = this.closure(this.out1[node]!, false, passEnd, into, nextCount);
      }
    }
    return nextCount;
  }

  /** The id of the DFA state of these NFA states, built when new (the cache dropped first when full). */
  private intern(list: Int32Array, count: number): number {
    const nodes = list.slice(0, count).sort();
    const key = nodes.join(',');
    const known = this.stateIds.get(key);
    if (known !== undefined) {
      return known;
    }
    if (this.stateNodes.length >= MAX_DFA_STATES || this.cachedNodes + nodes.length > MAX_DFA_CACHE_NODES) {
      this.dropCache();
    }
    this.cachedNodes += nodes.length;
    const id = this.stateNodes.length;
    let accept = -1;
    let live = false;
    for (let i = 0; i < nodes.length; i += 1) {
      const node = nodes[i]!;
      if (this.kind[node] === K_ACCEPT && (accept === -1 || this.accepts[node]! < accept)) {
        accept = this.accepts[node]!;
      } else if (this.kind[node] === K_CLASS) {
        live = true;
      }
    }
    this.stateIds.set(key, id);
    this.stateNodes.push(nodes);
    this.stateAccept.push(accept);
    this.stateLive.push(live);
    if (this.asciiNext.length < (id + 1) * 128) {
      const grown = new Int32Array(Math.min(MAX_DFA_STATES, Math.max(16, 2 * (id + 1))) * 128).fill(-1);
      grown.set(this.asciiNext);
      this.asciiNext = grown;
    }
    this.built += 1;
    return id;
  }

  private dropCache(): void {
    this.stateIds.clear();
    this.stateNodes = [];
    this.stateAccept = [];
    this.stateLive = [];
    this.asciiNext.fill(-1);
    this.otherNext.clear();
    this.initialState = -1;
    this.cachedNodes = 0;
    this.epoch += 1;
  }

  private accepted(list: Int32Array, count: number): number | undefined {
    let best: number | undefined;
    for (let i = 0; i < count; i += 1) {
      const node = list[i]!;
      if (this.kind[node] === K_ACCEPT && (best === undefined || this.accepts[node]! < best)) {
        best = this.accepts[node]!;
      }
    }
    return best;
  }

  /**
   * Adds `from` and everything reachable from it without reading a character to `list` (nodes already
   * seen in this generation skipped); returns the new count. `^` is passed only where `passStart`,
   * `$` only where `passEnd`; a `$` not passed stays in the list, for matchAtEnd.
   */
  private closure(from: number, passStart: boolean, passEnd: boolean, list: Int32Array, count: number): number {
    const generation = this.generation;
    let top = 0;
    this.stack[top++] = from;
    while (top > 0) {
      const node = this.stack[--top]!;
      if (this.seen[node] === generation) {
        continue;
      }
      this.seen[node] = generation;
      this.visits += 1;
      switch (this.kind[node]) {
        case K_SPLIT:
          this.stack[top++] = this.out2[node]!;
          this.stack[top++] = this.out1[node]!;
          break;
        case K_JUMP:
          this.stack[top++] = this.out1[node]!;
          break;
        case K_START:
          if (passStart) {
            this.stack[top++] = this.out1[node]!;
          }
          break;
        case K_END:
          if (passEnd) {
            this.stack[top++] = this.out1[node]!;
          } else {
            list[count++] = node;
          }
          break;
        default:
          list[count++] = node;
      }
    }
    return count;
  }
}
