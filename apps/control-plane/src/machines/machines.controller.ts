import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBearerAuth, ApiConflictResponse, ApiNotFoundResponse, ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import { DEFAULT_PAGE_SIZE, type MachineEvidence, parseInstant } from '@rackseal/api-contracts';
import type { TokenPrincipal } from '@rackseal/api-tokens';
import { KeyCertification, PcrPolicies } from '@rackseal/attestation';
import { Clock } from '@rackseal/platform';
import { GroupAttestationIntervals, type Machine, MachineNotFoundError, MachineReattestRequests, MachineRevocations, MachinesRepository, parseMachineRef } from '@rackseal/machines';
import { actorOf, Principal, RequireScope } from '../auth/auth.decorators';
import { MachineEvidenceDto } from '../fleet/fleet.dto';
import { CertifiedKeyDto } from './certified-key.dto';
import { MACHINE_REF_DESCRIPTION, MachineDetailDto, MachineDto, MachineReattestRequestDto, MachineRevocationDto, MachinesQueryDto, RevokeMachineDto } from './machines.dto';

/**
 * Machines and their lifecycle (docs/architecture.md §3, §4.8, §5): list with filters (state, group,
 * not attested since T, overdue against the group's interval), one machine with its attestation times, last failure and history, and the
 * operator's revocation and request to re-attest now. Reading needs `inventory:read`; revoking `inventory:write` (the scope
 * catalogue: "import inventory CSV files, revoke machines").
 */
@ApiTags('machines')
@ApiBearerAuth()
@Controller('v1/machines')
export class MachinesController {
  constructor(
    private readonly machines: MachinesRepository,
    private readonly revocations: MachineRevocations,
    private readonly reattests: MachineReattestRequests,
    private readonly intervals: GroupAttestationIntervals,
    private readonly clock: Clock,
    private readonly keys: KeyCertification,
    private readonly policies: PcrPolicies,
  ) {}

  @Get()
  @RequireScope('inventory:read')
  @ApiOkResponse({ type: MachineDto, isArray: true, description: 'Ordered by serial; page with ?after=<last serial>.' })
  list(@Query() query: MachinesQueryDto): Promise<MachineDto[]> {
    return this.machines.list({
      state: query.state,
      group: query.group,
      // validated by the DTO
      notAttestedSince: query.notAttestedSince === undefined ? undefined : parseInstant(query.notAttestedSince),
      overdue: query.overdue === undefined ? undefined : { at: this.clock.now(), fleetIntervalMs: this.intervals.fleetIntervalMs },
      after: query.after,
      limit: query.limit ?? DEFAULT_PAGE_SIZE,
    });
  }

  @Get(':ref')
  @RequireScope('inventory:read')
  @ApiParam({ name: 'ref', description: MACHINE_REF_DESCRIPTION })
  @ApiOkResponse({ type: MachineDetailDto })
  @ApiBadRequestResponse({ description: 'neither a UUID nor a serial' })
  @ApiNotFoundResponse({ description: 'no machine with this id or serial' })
  async show(@Param('ref') ref: string): Promise<MachineDetailDto> {
    const machine = await this.machines.findByRef(parseMachineRef(ref));
    if (machine === undefined) {
      throw new MachineNotFoundError(ref);
    }
    return this.detail(machine);
  }

  /** The machine's certified keys (issue 13 item 1): the live one and the retired ones, newest first. */
  @Get(':ref/keys')
  @RequireScope('inventory:read')
  @ApiParam({ name: 'ref', description: MACHINE_REF_DESCRIPTION })
  @ApiOkResponse({ type: CertifiedKeyDto, isArray: true, description: 'newest first; retiredAt null for the live key' })
  @ApiBadRequestResponse({ description: 'neither a UUID nor a serial' })
  @ApiNotFoundResponse({ description: 'no machine with this id or serial' })
  keysOf(@Param('ref') ref: string): Promise<CertifiedKeyDto[]> {
    return this.keys.keysOf(parseMachineRef(ref));
  }

  /**
   * The PCR values of the machine's newest verified quote (issue 16: the dashboard sets them against
   * the group's allowed sets; why an attestation was refused is in the machine's lastFailure).
   */
  @Get(':ref/evidence')
  @RequireScope('inventory:read')
  @ApiParam({ name: 'ref', description: MACHINE_REF_DESCRIPTION })
  @ApiOkResponse({ type: MachineEvidenceDto })
  @ApiBadRequestResponse({ description: 'neither a UUID nor a serial' })
  @ApiNotFoundResponse({ description: 'no machine with this id or serial' })
  @ApiConflictResponse({ description: 'policy.no-evidence: no verified quote yet (as when promoting it)' })
  evidence(@Param('ref') ref: string): Promise<MachineEvidence<Date>> {
    return this.policies.evidenceOf(ref);
  }

  /**
   * Revokes the machine (final: it never attests again), with the reason in its history and the audit
   * record. Revoking a revoked machine is not an error: 200 with `changed: false`, nothing written.
   */
  @Post(':ref/revoke')
  @HttpCode(200)
  @RequireScope('inventory:write')
  @ApiParam({ name: 'ref', description: MACHINE_REF_DESCRIPTION })
  @ApiOkResponse({ type: MachineRevocationDto, description: 'revoked (changed false when it already was)' })
  @ApiBadRequestResponse({ description: 'neither a UUID nor a serial, or a reason that is empty, longer than 1000 characters or holds control characters' })
  @ApiNotFoundResponse({ description: 'no machine with this id or serial' })
  async revoke(@Param('ref') ref: string, @Body() body: RevokeMachineDto, @Principal() principal: TokenPrincipal): Promise<MachineRevocationDto> {
    const result = await this.revocations.revoke(parseMachineRef(ref), { reason: body.reason, actor: actorOf(principal) });
    return { changed: result.changed, machine: await this.detail(result.machine) };
  }

  /**
   * Asks the machine to attest again now: its agent reads `reattest: true` from GET /node/v1/self
   * until its next successful attestation. Audited (`machine.reattest-requested`); a request while
   * one is pending keeps the first.
   */
  @Post(':ref/reattest')
  @HttpCode(200)
  @RequireScope('inventory:write')
  @ApiParam({ name: 'ref', description: MACHINE_REF_DESCRIPTION })
  @ApiOkResponse({ type: MachineReattestRequestDto, description: 'the pending request' })
  @ApiBadRequestResponse({ description: 'neither a UUID nor a serial' })
  @ApiNotFoundResponse({ description: 'no machine with this id or serial' })
  @ApiConflictResponse({ description: 'machine.illegal-transition: the machine is revoked and never attests again' })
  reattest(@Param('ref') ref: string, @Principal() principal: TokenPrincipal): Promise<MachineReattestRequestDto> {
    return this.reattests.request(parseMachineRef(ref), actorOf(principal));
  }

  private async detail(machine: Machine): Promise<MachineDetailDto> {
    const history = await this.machines.history(machine.id);
    return { ...machine, history: history.map(({ seq, from, to, reason, actor, at }) => ({ seq, from, to, reason, actor, at })) };
  }
}
