import { type ChainResult, TrustStore, type TrustStoreAddResult, unwrapCertificates, EkCertificateError, verifyEkChain } from '@rackseal/ek-trust';
import type { Command } from 'commander';
import { CliError, filesAtPath, readInput } from '@rackseal/command-line';
import { terminalJson } from '../terminal-text';
import { ekCommand, readEkCertificateFile } from './ek-inspect.command';

interface EkVerifyOptions {
  ca: string[];
  anchor: string[];
  intermediate: string[];
  ekGraceDays: string;
  caGraceDays: string;
  at?: string;
  json?: boolean;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/**
 * `rackseal ek verify --ca PATH… CERT` (docs/architecture.md §5, issue 5): builds the chain from an EK certificate
 * to a trusted root, offline. --ca (repeatable) is a file (DER, PEM, a PEM bundle) or a directory of
 * such files; every certificate in them must be a CA. Roots (self-signed) end chains; a CA given with
 * --anchor ends chains too even when it is not self-signed (vendor roots cross-signed by a CA you do
 * not have). --intermediate adds untrusted path material, as a CSV row or an agent would.
 * Exit 0 with the chain, 1 refused (reason on stderr), 2 usage or unreadable input.
 */
export function registerEkVerify(program: Command): void {
  ekCommand(program)
    .command('verify')
    .description('verify an EK certificate chains to a trusted vendor CA')
    .argument('<cert>', 'the EK certificate (DER, PEM, base64 or NV dump)')
    .option('--ca <path>', 'trusted CA certificates: a file (DER/PEM/bundle) or a directory of them; repeatable', collect, [])
    .option('--anchor <path>', 'like --ca, and trusted as a chain end even if not self-signed; repeatable', collect, [])
    .option('--intermediate <path>', 'untrusted intermediate certificates to build the path with; repeatable', collect, [])
    .option('--ek-grace-days <days>', 'accept an EK certificate expired up to this many days ago ("inf" ignores EK expiry)', '0')
    .option('--ca-grace-days <days>', 'accept a CA certificate expired up to this many days ago', '0')
    .option('--at <time>', 'verify at this ISO 8601 time instead of now')
    .option('--json', 'machine-readable output on stdout')
    .action((file: string, options: EkVerifyOptions) => {
      if (options.ca.length === 0 && options.anchor.length === 0) {
        throw CliError.usage('ek verify needs at least one --ca PATH (or --anchor PATH)');
      }
      const ekGraceDays = parseDays(options.ekGraceDays, '--ek-grace-days');
      const caGraceDays = parseDays(options.caGraceDays, '--ca-grace-days');
      const now = parseTime(options.at);
      const store = new TrustStore();
      for (const path of options.ca) {
        loadCas(store, path, '--ca', false);
      }
      for (const path of options.anchor) {
        loadCas(store, path, '--anchor', true);
      }
      const extras = options.intermediate.flatMap((path) => readBundle(path, '--intermediate'));
      const ek = readEkCertificateFile(file, 'certificate');

      const result = verifyEkChain(ek, { store, extraIntermediates: extras, now, ekGraceDays, caGraceDays });
      if (!result.ok) {
        if (options.json) {
          process.stdout.write(`${terminalJson({ valid: false, reason: result.reason, message: result.message })}\n`);
        }
        throw CliError.invalid(`EK certificate refused (${result.reason}): ${result.message}`);
      }
      process.stdout.write(options.json ? `${terminalJson({ valid: true, chain: result.chain, graceApplied: result.graceApplied })}\n` : chainText(result));
    });
}

function parseDays(text: string, flag: string): number {
  if (/^(inf|infinity)$/i.test(text.trim())) {
    return Infinity;
  }
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 0) {
    throw CliError.usage(`${flag} must be a number of days >= 0 or "inf"`);
  }
  return value;
}

function parseTime(text: string | undefined): Date {
  if (text === undefined) {
    return new Date();
  }
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) {
    throw CliError.usage(`--at ${JSON.stringify(text)} is not an ISO 8601 time`);
  }
  return date;
}

function loadCas(store: TrustStore, path: string, flag: string, anchor: boolean): void {
  for (const file of filesAtPath(path, flag)) {
    const results: TrustStoreAddResult[] = store.addAll(readInput(file, flag), { anchor, label: file });
    for (const result of results) {
      if (result.status === 'rejected') {
        throw CliError.usage(`${flag} ${JSON.stringify(file)}: ${result.message}`);
      }
      if (result.status === 'duplicate' && anchor) {
        store.setAnchor(result.entry.fingerprint, true);
      }
    }
  }
}

function readBundle(path: string, flag: string): Buffer[] {
  return filesAtPath(path, flag).flatMap((file) => {
    try {
      return unwrapCertificates(readInput(file, flag)).map((c) => c.der);
    } catch (error) {
      if (error instanceof EkCertificateError) {
        throw CliError.usage(`${flag} ${JSON.stringify(file)}: ${error.message}`);
      }
      throw error;
    }
  });
}

function chainText(result: Extract<ChainResult, { ok: true }>): string {
  const lines = [`EK certificate verified: chain of ${result.chain.length} certificates`];
  result.chain.forEach((link, i) => {
    lines.push(`  ${i} ${link.kind.padEnd(12)} ${link.fingerprint}  ${link.subject === '' ? '(empty subject)' : link.subject}`);
  });
  for (const grace of result.graceApplied) {
    lines.push(`grace: ${grace.kind === 'ek' ? 'EK certificate' : 'CA'} "${grace.subject}" expired ${grace.notAfter} (${grace.daysExpired} days ago), accepted within the configured grace`);
  }
  return `${lines.join('\n')}\n`;
}
