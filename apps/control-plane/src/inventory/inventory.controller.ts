import type { RecordedImport } from '@rackseal/api-contracts';
import { Controller, Get, HttpCode, Inject, Param, ParseUUIDPipe, PayloadTooLargeException, Post, Query, Req, UnsupportedMediaTypeException } from '@nestjs/common';
import { ApiBearerAuth, ApiConsumes, ApiNotFoundResponse, ApiOkResponse, ApiParam, ApiRequestTimeoutResponse, ApiTags } from '@nestjs/swagger';
import type { TokenPrincipal } from '@rackseal/api-tokens';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import {
  InventoryImporter,
  InventoryImportNotFoundError,
  InventoryImportsRepository,
  UploadIdleTimeoutError,
  UploadInterruptedError,
  type ImportSummary,
} from '@rackseal/inventory';
import type { Request } from 'express';
import { actorOf, Principal, RequireScope } from '../auth/auth.decorators';
import { ImportQueryDto, ImportSummaryDto, RecordedImportDto } from './inventory.dto';

/** Charsets read as UTF-8 (US-ASCII is a subset); the CSV reader decodes nothing else. */
const UTF8_CHARSETS = new Set(['utf-8', 'utf8', 'us-ascii']);

/** The `charset` parameter of a Content-Type (RFC 9110 §8.3.2), unquoted and lowercased; undefined when absent. */
function charsetOf(contentType: string): string | undefined {
  for (const parameter of contentType.split(';').slice(1)) {
    const [name, ...value] = parameter.split('=');
    if (name!.trim().toLowerCase() === 'charset') {
      return value.join('=').trim().replace(/^"(.*)"$/, '$1').toLowerCase();
    }
  }
  return undefined;
}

/**
 * The answer goes out before the body was read to its end (refused early, too large, too many
 * imports): the rest of the body is read and discarded, so the client, still sending, reads the
 * answer instead of a connection reset (closing a socket with unread data resets it, RFC 9293
 * §3.6.1 / RFC 1122 §4.2.2.13). Discarding holds no database connection and no import slot, and it
 * is bounded like an upload: the connection is cut when the client pauses for the idle timeout or
 * sends more than the file limit.
 */
function discardRestOfUpload(request: Request, idleMs: number, maxBytes: number): void {
  if (request.complete) {
    return;
  }
  const socket = request.socket;
  let discarded = 0;
  let timer = setTimeout(() => socket.destroy(), idleMs);
  request.on('error', () => undefined);
  request.on('data', (chunk: Buffer) => {
    discarded += chunk.length;
    clearTimeout(timer);
    timer = setTimeout(() => socket.destroy(), idleMs);
    if (discarded > maxBytes) {
      socket.destroy();
    }
  });
  request.resume();
  request.once('end', () => clearTimeout(timer));
  socket.once('close', () => clearTimeout(timer));
}

function isAbort(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || (error instanceof Error && error.message === 'aborted');
}

/**
 * Inventory (docs/architecture.md §4.2): streamed CSV import; the machines it creates are served by
 * MachinesController. The CSV body is never buffered: no body parser handles text/csv, so the
 * request stream goes straight into the importer, which holds one batch of rows at a time.
 */
@ApiTags('inventory')
@ApiBearerAuth()
@Controller('v1')
export class InventoryController {
  constructor(
    private readonly importer: InventoryImporter,
    private readonly imports: InventoryImportsRepository,
    @Inject(RACKSEAL_CONFIG) private readonly config: RacksealConfig,
  ) {}

  private discardRestOfUpload(request: Request): void {
    discardRestOfUpload(request, this.config.inventory.uploadIdleTimeoutMs, this.config.inventory.maxFileBytes);
  }

  @Post('inventory/imports')
  @HttpCode(200)
  @RequireScope('inventory:write')
  @ApiConsumes('text/csv')
  @ApiOkResponse({ type: ImportSummaryDto, description: 'The import ran (status succeeded, partial or refused).' })
  @ApiRequestTimeoutResponse({ description: 'The upload sent no data for INVENTORY_UPLOAD_IDLE_TIMEOUT_MS; nothing was imported (the connection is closed).' })
  async import(@Req() request: Request, @Query() query: ImportQueryDto, @Principal() principal: TokenPrincipal): Promise<ImportSummary> {
    const contentType = request.headers['content-type'] ?? '';
    const type = contentType.split(';')[0]!.trim().toLowerCase();
    if (type !== 'text/csv') {
      throw new UnsupportedMediaTypeException('send the inventory as Content-Type: text/csv');
    }
    const charset = charsetOf(contentType);
    if (charset !== undefined && !UTF8_CHARSETS.has(charset)) {
      this.discardRestOfUpload(request);
      throw new UnsupportedMediaTypeException(`charset ${JSON.stringify(charset.slice(0, 40))} is not supported: send the inventory as UTF-8 (Content-Type: text/csv; charset=utf-8)`);
    }
    const maxBytes = this.config.inventory.maxFileBytes;
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > maxBytes) {
      this.discardRestOfUpload(request);
      throw new PayloadTooLargeException(`the file is larger than ${maxBytes} bytes (Content-Length ${declared}; the limit per file is INVENTORY_MAX_FILE_BYTES); nothing was read`);
    }
    try {
      // Not destroyed when the importer stops reading early: the answer below still has to go out.
      return await this.importer.import(request.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>, {
        actor: actorOf(principal),
        fileName: query.fileName,
        dryRun: query.dryRun === 'true',
        partial: query.partial === 'true',
        defaultGroup: query.group,
      });
    } catch (error) {
      // The refusal itself (status, code, Retry-After, Connection: close) is the exception filter's;
      // here only the rest of the upload is dealt with. A stalled upload has no rest to wait for.
      if (!(error instanceof UploadIdleTimeoutError)) {
        this.discardRestOfUpload(request);
      }
      throw isAbort(error) ? new UploadInterruptedError(error) : error;
    }
  }

  @Get('inventory/imports/:id')
  @RequireScope('inventory:read')
  @ApiOkResponse({ type: RecordedImportDto })
  @ApiNotFoundResponse({ description: 'no inventory import with this id' })
  @ApiParam({ name: 'id', format: 'uuid', description: 'the import id `inventory import` prints' })
  async getImport(@Param('id', new ParseUUIDPipe()) id: string): Promise<RecordedImport> {
    const record = await this.imports.findById(id);
    if (record === undefined) {
      throw new InventoryImportNotFoundError(id);
    }
    return {
      id: record.id,
      status: record.status,
      dryRun: record.dryRun,
      partial: record.partial,
      fileName: record.fileName,
      startedBy: record.startedBy,
      counts: { ...record.counts },
      problems: record.problems,
      problemsTruncated: record.problemsTruncated,
      startedAt: record.startedAt.toISOString(),
      finishedAt: (record.finishedAt ?? record.startedAt).toISOString(),
    };
  }
}
