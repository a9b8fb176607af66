/** Wall-clock time behind an interface so tests can pin it and audit records stay reproducible. */
export abstract class Clock {
  abstract now(): Date;
}

export class SystemClock extends Clock {
  now(): Date {
    return new Date();
  }
}
