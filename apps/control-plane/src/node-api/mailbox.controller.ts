import { Body, Controller, Get, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBody, ApiConflictResponse, ApiNotFoundResponse, ApiOkResponse, ApiQuery, ApiTags } from '@nestjs/swagger';
import { Mailbox } from '@rackseal/deliveries';
import {
  type AckDeliveryResponse,
  DELIVERIES_ROUTE,
  MAILBOX_MAX_CARRIED_ACKS,
  MAILBOX_MAX_WAIT_SECONDS,
  type MailboxPollResponse,
  type MailboxResponse,
  nodeApiPath,
} from '@rackseal/node-api-contracts';
import type { Response } from 'express';
import { NodeAuthenticated, NodeCallerOf } from '../auth/auth.decorators';
import type { NodeCaller } from '../auth/node-request.guard';
import { AckDeliveryDto, AckDeliveryResponseDto, MailboxPollDto, MailboxPollResponseDto, MailboxResponseDto } from './mailbox.dto';

/**
 * The machine's mailbox (issue 14 item 2), signed with the node credential: its own ready deliveries
 * by long poll, and their acks with a proof of unwrap. A quarantined or revoked machine never gets
 * here (the guard answers 401 node.machine-not-attested / node.unknown-credential). Refusals carry
 * `delivery.*` codes (libs/deliveries README); every refused ack is audited `delivery.ack-refused`.
 */
@ApiTags('node: deliveries')
@NodeAuthenticated()
@Controller(nodeApiPath(DELIVERIES_ROUTE))
export class MailboxController {
  constructor(private readonly mailbox: Mailbox) {}

  @Get()
  @ApiQuery({ name: 'wait', required: false, description: `seconds to hold the request when nothing is ready (0-${MAILBOX_MAX_WAIT_SECONDS}, default 0)` })
  @ApiOkResponse({ type: MailboxResponseDto, description: "the machine's ready deliveries, oldest first (at most 100), possibly none after the wait" })
  @ApiBadRequestResponse({ description: 'delivery.invalid: wait out of range' })
  poll(@NodeCallerOf() caller: NodeCaller, @Query('wait') wait: string | undefined, @Res({ passthrough: true }) res: Response): Promise<MailboxResponse> {
    const seconds = Mailbox.waitSeconds(wait);
    return this.mailbox.poll(caller, seconds, abandonedSignal(res));
  }

  /**
   * The poll carrying the acks of what the agent installed since its last poll (docs/decisions.md,
   * "One request per delivery"): each ack decided as the ack route decides it and answered in
   * place, then the mailbox answered as the GET answers it. `wait` is checked first: a bad one
   * refuses the request before any ack is taken.
   */
  @Post('poll')
  @HttpCode(200)
  @ApiQuery({ name: 'wait', required: false, description: `seconds to hold the request when nothing is ready (0-${MAILBOX_MAX_WAIT_SECONDS}, default 0)` })
  @ApiBody({ type: MailboxPollDto })
  @ApiOkResponse({ type: MailboxPollResponseDto, description: 'one answer per carried ack (acked, or refused with the code the ack route would answer; refusals audited), then the ready deliveries as the GET answers them' })
  @ApiBadRequestResponse({ description: `delivery.invalid: wait out of range, or a body that is not { acks: [{ id, proof }] } with at most ${MAILBOX_MAX_CARRIED_ACKS} acks (audited; nothing acked)` })
  pollCarrying(
    @NodeCallerOf() caller: NodeCaller,
    @Query('wait') wait: string | undefined,
    // `unknown`: libs/deliveries validates the body, so that a refusal is audited.
    @Body() body: unknown,
    @Res({ passthrough: true }) res: Response,
  ): Promise<MailboxPollResponse> {
    const seconds = Mailbox.waitSeconds(wait);
    return this.mailbox.pollCarrying(caller, body, seconds, abandonedSignal(res));
  }

  @Post(':id/ack')
  @HttpCode(200)
  @ApiBody({ type: AckDeliveryDto })
  @ApiOkResponse({ type: AckDeliveryResponseDto, description: 'acked now, or already (alreadyAcked: true, nothing changed)' })
  @ApiBadRequestResponse({ description: 'delivery.bad-proof (the proof does not match), delivery.invalid (no proof of 32 bytes); audited, nothing changed' })
  @ApiNotFoundResponse({ description: "delivery.not-found: no such delivery of this machine (another machine's is answered the same); audited" })
  @ApiConflictResponse({ description: 'delivery.not-ready: the delivery is pending, failed, cancelled or expired; audited' })
  // `unknown`: libs/deliveries validates the body, so that a refusal is audited.
  ack(@NodeCallerOf() caller: NodeCaller, @Param('id') id: string, @Body() body: unknown): Promise<AckDeliveryResponse> {
    return this.mailbox.ack(caller, id, body);
  }
}

/**
 * Aborts when the client goes away before its answer was sent, releasing its wait ('close' fires on
 * the response when the socket closes). Not after an answer: 'close' fires then too, and an abort
 * builds a DOMException with its stack — measurable on the poll's hot path (bench/README.md).
 */
function abandonedSignal(res: Response): AbortSignal {
  const abandoned = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) {
      abandoned.abort();
    }
  });
  return abandoned.signal;
}
