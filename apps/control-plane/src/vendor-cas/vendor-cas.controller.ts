import { BadRequestException, Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query, Res } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import type { TokenPrincipal } from '@rackseal/api-tokens';
import { parseVendorCaRef, VendorCaInputError, VendorCaNotFoundError, VendorCas, type VendorCaUpload } from '@rackseal/vendor-cas';
import type { Response } from 'express';
import { actorOf, Principal, RequireScope } from '../auth/auth.decorators';
import {
  AddVendorCasDto,
  FINGERPRINT_PARAM_DESCRIPTION,
  ListVendorCasQueryDto,
  SetAnchorDto,
  VendorCaAddResponseDto,
  VendorCaChangeDto,
  VendorCaDto,
} from './vendor-ca.dto';

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * Trusted TPM vendor CAs (issue 5, docs/architecture.md §4.1): upload (PEM bundle or a directory's files),
 * list, disable/enable, pin an intermediate as an anchor. Every change is audited with the change.
 */
@ApiTags('vendor-cas')
@ApiBearerAuth()
@Controller('v1/vendor-cas')
export class VendorCasController {
  constructor(private readonly vendorCas: VendorCas) {}

  /**
   * Unreadable input (bad PEM/base64, truncated DER) is a 400 naming the file and nothing is
   * written; readable non-CA certificates are `rejected` per certificate while the rest are added.
   */
  @Post()
  @RequireScope('vendor-ca:write')
  @ApiCreatedResponse({ type: VendorCaAddResponseDto, description: 'at least one CA was added' })
  @ApiOkResponse({ type: VendorCaAddResponseDto, description: 'nothing added (all duplicates or rejected)' })
  @ApiBadRequestResponse({ description: 'malformed body or unreadable certificate; nothing written' })
  async add(@Body() body: AddVendorCasDto, @Principal() principal: TokenPrincipal, @Res({ passthrough: true }) response: Response): Promise<VendorCaAddResponseDto> {
    if ((body.pem === undefined) === (body.files === undefined)) {
      throw new BadRequestException('give exactly one of "pem" (PEM text) or "files" ([{name, content}])');
    }
    const uploads: VendorCaUpload[] =
      body.pem !== undefined
        ? [{ content: body.pem, source: body.source ?? 'pem' }]
        : body.files!.map((file) => ({ content: decodeFile(file.name, file.content), source: file.name }));
    const summary = await this.vendorCas.addBundle(uploads, { addedBy: actorOf(principal), anchors: body.anchor === true });
    response.status(summary.added > 0 ? 201 : 200);
    return { added: summary.added, duplicate: summary.duplicate, rejected: summary.rejected, results: summary.results.map((r) => ({ ...r })) };
  }

  @Get()
  @RequireScope('vendor-ca:read')
  @ApiOkResponse({ type: VendorCaDto, isArray: true })
  list(@Query() query: ListVendorCasQueryDto): Promise<VendorCaDto[]> {
    return this.vendorCas.list({ includeDisabled: query.includeDisabled === 'true' });
  }

  @Get(':fingerprint')
  @RequireScope('vendor-ca:read')
  @ApiParam({ name: 'fingerprint', description: FINGERPRINT_PARAM_DESCRIPTION })
  @ApiOkResponse({ type: VendorCaDto })
  @ApiBadRequestResponse({ description: 'not a fingerprint, a prefix of at least 8 hex digits, or an id' })
  @ApiNotFoundResponse()
  @ApiConflictResponse({ description: 'the prefix matches several CAs (listed)' })
  async show(@Param('fingerprint') fingerprint: string): Promise<VendorCaDto> {
    const ca = await this.vendorCas.get(parseVendorCaRef(fingerprint));
    if (ca === undefined) {
      throw new VendorCaNotFoundError(fingerprint);
    }
    return ca;
  }

  /** Disables (never deletes: the audit trail and the CSV imports that chained through it keep meaning). */
  @Delete(':fingerprint')
  @HttpCode(200)
  @RequireScope('vendor-ca:write')
  @ApiParam({ name: 'fingerprint', description: FINGERPRINT_PARAM_DESCRIPTION })
  @ApiOkResponse({ type: VendorCaChangeDto, description: 'disabled (changed false when it already was)' })
  @ApiBadRequestResponse({ description: 'not a fingerprint, a prefix of at least 8 hex digits, or an id' })
  @ApiNotFoundResponse()
  @ApiConflictResponse({ description: 'the prefix matches several CAs (listed)' })
  async disable(@Param('fingerprint') fingerprint: string, @Principal() principal: TokenPrincipal): Promise<VendorCaChangeDto> {
    const change = await this.vendorCas.disable(parseVendorCaRef(fingerprint), actorOf(principal));
    if (change === undefined) {
      throw new VendorCaNotFoundError(fingerprint);
    }
    return change;
  }

  @Post(':fingerprint/enable')
  @HttpCode(200)
  @RequireScope('vendor-ca:write')
  @ApiParam({ name: 'fingerprint', description: FINGERPRINT_PARAM_DESCRIPTION })
  @ApiOkResponse({ type: VendorCaChangeDto, description: 'enabled (changed false when it already was)' })
  @ApiBadRequestResponse({ description: 'not a fingerprint, a prefix of at least 8 hex digits, or an id' })
  @ApiNotFoundResponse()
  @ApiConflictResponse({ description: 'the prefix matches several CAs (listed)' })
  async enable(@Param('fingerprint') fingerprint: string, @Principal() principal: TokenPrincipal): Promise<VendorCaChangeDto> {
    const change = await this.vendorCas.enable(parseVendorCaRef(fingerprint), actorOf(principal));
    if (change === undefined) {
      throw new VendorCaNotFoundError(fingerprint);
    }
    return change;
  }

  /** Pins an intermediate as a trust anchor, or unpins it; roots cannot be unpinned (400). */
  @Patch(':fingerprint')
  @RequireScope('vendor-ca:write')
  @ApiParam({ name: 'fingerprint', description: FINGERPRINT_PARAM_DESCRIPTION })
  @ApiOkResponse({ type: VendorCaChangeDto })
  @ApiBadRequestResponse({ description: 'not a fingerprint, a prefix of at least 8 hex digits, or an id; or unpinning a root' })
  @ApiNotFoundResponse()
  @ApiConflictResponse({ description: 'the prefix matches several CAs (listed)' })
  async setAnchor(@Param('fingerprint') fingerprint: string, @Body() body: SetAnchorDto, @Principal() principal: TokenPrincipal): Promise<VendorCaChangeDto> {
    const change = await this.vendorCas.setAnchor(parseVendorCaRef(fingerprint), body.anchor, actorOf(principal));
    if (change === undefined) {
      throw new VendorCaNotFoundError(fingerprint);
    }
    return change;
  }
}

/** A file's content: PEM text as is, anything else must be base64 (of DER, or of a PEM file). */
function decodeFile(name: string, content: string): string | Buffer {
  if (content.includes('-----BEGIN ')) {
    return content;
  }
  const compact = content.replace(/\s+/g, '');
  if (compact.length === 0 || compact.length % 4 !== 0 || !BASE64.test(compact)) {
    throw new VendorCaInputError(`file ${JSON.stringify(name)}: content is neither PEM nor base64`);
  }
  return Buffer.from(compact, 'base64');
}
