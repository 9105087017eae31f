/**
 * What the event streams of a gateway hold at once: the text of each event being written out,
 * until its client has taken it. A client that reads slowly holds its event for up to
 * GATEWAY_SLOW_CLIENT_SECONDS, and an event's text can be tens of MB (a line of MAX_LINE_BYTES,
 * six characters to a control character): without a bound, a few such clients of one hostile
 * run's line would run the gateway out of memory. Counted as a byte a character.
 */
export class HeldBytes {
  private held = 0;

  constructor(readonly limit: number) {}

  /**
   * Takes `bytes` for an event's text if they fit, or if nothing else is held: an event longer
   * than the limit still goes out, to one client at a time. False: the stream must let it go.
   */
  take(bytes: number): boolean {
    if (this.held > 0 && this.held + bytes > this.limit) return false;
    this.held += bytes;
    return true;
  }

  give(bytes: number): void {
    this.held -= bytes;
  }
}
