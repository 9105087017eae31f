import { pino, type DestinationStream, type Logger } from 'pino';

/** JSON lines on `destination` (stdout by default); tests pass a sink and read the records. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'claudebox' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // A prompt or a Redis password must not end up in a log aggregator by accident.
      redact: ['*.password', 'redisUrl', '*.ANTHROPIC_API_KEY', 'prompt', '*.prompt'],
    },
    destination,
  );
}
