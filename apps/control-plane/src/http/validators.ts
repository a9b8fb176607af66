import { applyDecorators } from '@nestjs/common';
import { parseInstant } from '@rackseal/api-contracts';
import { codePoint } from '@rackseal/api-tokens';
import { findUnprintable } from '@rackseal/ek-trust';
import { Transform } from 'class-transformer';
import { ValidateBy, type ValidationOptions } from 'class-validator';

/**
 * A string shown to operators (names, labels, paging cursors): refuses every control character
 * (C0 including NUL, ESC and newlines, DEL, C1, line separators, bidi controls: the one definition
 * in libs/ek-trust printable.ts), naming the field and the character. Stored text stays printable, so
 * nothing an API caller sends can rewrite an operator's terminal.
 */
export function IsPrintableText(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isPrintableText',
      validator: {
        validate: (value: unknown) => typeof value !== 'string' || findUnprintable(value) === undefined,
        defaultMessage: (args) =>
          `${args?.property ?? 'value'} must not contain control characters (found ${codePoint(findUnprintable(String(args?.value))?.character ?? '?')})`,
      },
    },
    options,
  );
}

const DECIMAL_INTEGER = /^-?[0-9]+$/;

/**
 * An integer query parameter within [min, max]. Only plain decimal digits are converted: `1e20`,
 * `0x10`, ` 5`, `NaN` and the empty string stay strings and are refused ("after must be an integer
 * from 0 to …"), where `Number()` would have turned them into 1e20, 16, 5, NaN and 0. `max` defaults to
 * what a JavaScript number and a PostgreSQL bigint both hold exactly, so no value out of range for
 * the column ever reaches the database.
 */
export function IsQueryInteger(bounds: { min: number; max?: number }): PropertyDecorator {
  const { min, max = Number.MAX_SAFE_INTEGER } = bounds;
  return applyDecorators(
    Transform(({ value }: { value: unknown }) => (typeof value === 'string' && DECIMAL_INTEGER.test(value) ? Number(value) : value)),
    ValidateBy({
      name: 'isQueryInteger',
      validator: {
        validate: (value: unknown) => Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max,
        // One message naming the field and the range, whatever was wrong (not a number, too big, ...).
        defaultMessage: (args) => `${args?.property ?? 'value'} must be an integer from ${min} to ${max}`,
      },
    }),
  );
}

/**
 * An instant query parameter: an RFC 3339 date-time with its offset (parseInstant in
 * libs/api-contracts), so no server's local zone ever decides what the operator meant.
 */
export function IsInstant(): PropertyDecorator {
  return ValidateBy({
    name: 'isInstant',
    validator: {
      validate: (value: unknown) => typeof value === 'string' && parseInstant(value) !== undefined,
      defaultMessage: (args) => `${args?.property ?? 'value'} must be an RFC 3339 date-time with an offset, e.g. 2026-03-01T10:00:00Z`,
    },
  });
}
