import { Injectable } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { JOB_HANDLER_METADATA } from '@rackseal/jobs';
import type { DiscoveredHandler, JobFunction } from './handler-registry';

/** Finds every @JobHandler method among the worker's providers. */
@Injectable()
export class JobHandlerDiscovery {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
  ) {}

  discover(): DiscoveredHandler[] {
    const found: DiscoveredHandler[] = [];
    for (const wrapper of this.discovery.getProviders()) {
      const instance = wrapper.instance as Record<string, unknown> | undefined;
      if (instance === undefined || instance === null || typeof instance !== 'object') {
        continue;
      }
      const prototype = Object.getPrototypeOf(instance) as object;
      for (const method of this.scanner.getAllMethodNames(prototype)) {
        const fn = instance[method];
        if (typeof fn !== 'function') {
          continue;
        }
        const name = this.reflector.get<string | undefined>(JOB_HANDLER_METADATA, fn as JobFunction);
        if (name !== undefined) {
          found.push({
            name,
            owner: `${instance.constructor.name}.${method}`,
            run: (fn as JobFunction).bind(instance),
          });
        }
      }
    }
    return found;
  }
}
