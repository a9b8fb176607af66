import { domainErrorFor, type ErrorCodeTable, type IssuedToken } from '@rackseal/api-contracts';
import type { AuditLog } from '@rackseal/audit';
import type { Clock, RandomSource } from '@rackseal/platform';
import { type DataSource, type EntityManager, IsNull } from 'typeorm';
import { ApiTokenEntity } from './api-token.entity';
import { type Scope, isScope } from './scopes';
import { generateToken, hashToken, looksLikeToken } from './token-format';
import { tokenNameProblem } from './token-name';

export interface TokenPrincipal {
  readonly tokenId: string;
  readonly name: string;
  readonly scopes: readonly string[];
}

/** What issuing answers (shown once; only the token's hash is kept): the operator API's shape. */
export type { IssuedToken } from '@rackseal/api-contracts';

/** Every code this library throws, with its kind (the README lists them with their HTTP status). */
export const API_TOKEN_ERROR_CODES = {
  'token.invalid-scope': 'invalid',
  'token.invalid-name': 'invalid',
  'token.not-found': 'not-found',
} as const satisfies ErrorCodeTable;
export type ApiTokenErrorCode = keyof typeof API_TOKEN_ERROR_CODES;

/** A refusal of this library, carrying one of API_TOKEN_ERROR_CODES. */
export class ApiTokenError extends domainErrorFor(API_TOKEN_ERROR_CODES) {}

/** A token request that names no scope or an unknown one. */
export class InvalidScopeError extends ApiTokenError {
  constructor(message: string, code: ApiTokenErrorCode = 'token.invalid-scope') {
    super(code, message);
    this.name = 'InvalidScopeError';
  }
}

/**
 * A token name that is empty, too long or carries control characters. A subclass of
 * InvalidScopeError so every caller that refuses a bad token request refuses this one too.
 */
export class InvalidTokenNameError extends InvalidScopeError {
  constructor(message: string) {
    super(message, 'token.invalid-name');
    this.name = 'InvalidTokenNameError';
  }
}

/** No active token has this id (unknown, or already revoked). */
export class TokenNotFoundError extends ApiTokenError {
  constructor(readonly id: string) {
    super('token.not-found', `no active token ${id}`);
    this.name = 'TokenNotFoundError';
  }
}

/**
 * Issues, checks and revokes operator tokens; usable from Nest (ApiTokensService wraps it) and from
 * the CLI's bootstrap command, which talks to PostgreSQL directly. Issuing and revoking are audited
 * in the same transaction.
 */
export class ApiTokens {
  constructor(
    private readonly dataSource: DataSource,
    private readonly audit: Pick<AuditLog, 'append'>,
    private readonly clock: Clock,
    private readonly random: RandomSource,
  ) {}

  async issue(name: string, scopes: readonly string[], createdBy: string): Promise<IssuedToken> {
    const nameProblem = tokenNameProblem(name);
    if (nameProblem !== undefined) {
      throw new InvalidTokenNameError(nameProblem);
    }
    const cleanName = name.trim();
    if (scopes.length === 0) {
      throw new InvalidScopeError('a token needs at least one scope');
    }
    const unknown = scopes.filter((s) => !isScope(s));
    if (unknown.length > 0) {
      throw new InvalidScopeError(`unknown scope(s): ${unknown.join(', ')}`);
    }
    const token = generateToken((n) => this.random.bytes(n));
    const id = this.random.uuid();
    const unique = [...new Set(scopes)].sort() as Scope[];
    await this.dataSource.transaction(async (m) => {
      await m.insert(ApiTokenEntity, {
        id,
        name: cleanName,
        tokenHash: hashToken(token),
        scopes: unique,
        createdAt: this.clock.now(),
        createdBy,
        revokedAt: null,
        lastUsedAt: null,
      });
      await this.audit.append(
        { actor: createdBy, action: 'token.issued', subject: `token:${id}`, outcome: 'success', details: { name: cleanName, scopes: unique } },
        m,
      );
    });
    return { id, token, name: cleanName, scopes: unique };
  }

  /** The principal a bearer token stands for, or undefined for an unknown, malformed or revoked one. */
  async authenticate(token: string): Promise<TokenPrincipal | undefined> {
    if (!looksLikeToken(token)) {
      return undefined;
    }
    const row = await this.dataSource.getRepository(ApiTokenEntity).findOne({ where: { tokenHash: hashToken(token) } });
    if (row === null || row.revokedAt !== null) {
      return undefined;
    }
    // Best effort, at most once a minute per token: bookkeeping must not make every call write.
    const now = this.clock.now();
    if (row.lastUsedAt === null || now.getTime() - row.lastUsedAt.getTime() > 60_000) {
      await this.dataSource.getRepository(ApiTokenEntity).update({ id: row.id }, { lastUsedAt: now });
    }
    return { tokenId: row.id, name: row.name, scopes: row.scopes };
  }

  async revoke(id: string, revokedBy: string): Promise<boolean> {
    return this.dataSource.transaction(async (m: EntityManager) => {
      const result = await m.update(ApiTokenEntity, { id, revokedAt: IsNull() }, { revokedAt: this.clock.now() });
      const revoked = (result.affected ?? 0) > 0;
      await this.audit.append(
        { actor: revokedBy, action: 'token.revoked', subject: `token:${id}`, outcome: revoked ? 'success' : 'refused', details: revoked ? {} : { reason: 'no active token with this id' } },
        m,
      );
      return revoked;
    });
  }

  async list(): Promise<Omit<ApiTokenEntity, 'tokenHash'>[]> {
    const rows = await this.dataSource.getRepository(ApiTokenEntity).find({ order: { createdAt: 'ASC' } });
    return rows.map(({ tokenHash: _hash, ...rest }) => rest);
  }
}
