import type { DestinationStream } from 'pino';

/** One parsed log line. */
export type LogLine = Record<string, unknown>;

/** A pino destination that keeps every JSON line it is given, for assertions on what got logged. */
export interface LogCapture {
  stream: DestinationStream;
  /** Every line written so far, parsed. */
  lines(): LogLine[];
  /** The lines whose `event` field equals `event`. */
  events(event: string): LogLine[];
}

export function createLogCapture(): LogCapture {
  const raw: string[] = [];
  const stream: DestinationStream = {
    write(chunk: string) {
      for (const line of chunk.split('\n')) if (line.trim()) raw.push(line);
    },
  };
  const lines = () => raw.map((l) => JSON.parse(l) as LogLine);
  return {
    stream,
    lines,
    events: (event) => lines().filter((l) => l.event === event),
  };
}
