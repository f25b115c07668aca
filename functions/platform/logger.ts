import { type DestinationStream, type Logger, pino } from 'pino';

/** pino levels → Cloud Logging severities. */
const SEVERITY: Record<string, string> = {
  trace: 'DEBUG',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'CRITICAL',
};

export type { Logger };

/**
 * One JSON line per event, in the shape Cloud Logging reads from stdout: `severity`, `message`,
 * plus a stable `event` name and ids passed by the caller. `destination` lets tests capture lines.
 */
export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      messageKey: 'message',
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: {
        level: (label) => ({ severity: SEVERITY[label] ?? 'DEFAULT' }),
      },
      redact: {
        paths: ['apiKey', '*.apiKey', 'headers.authorization', 'authorization'],
        censor: '[redacted]',
      },
    },
    options.destination,
  );
}

/**
 * Fields that tie a log line to the request's trace in Cloud Logging, from `X-Cloud-Trace-Context`
 * (`TRACE_ID/SPAN_ID;o=1`) or W3C `traceparent`.
 */
export function traceFields(
  headers: Record<string, string | string[] | undefined>,
  projectId: string,
): Record<string, string> {
  const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
  const cloud = first(headers['x-cloud-trace-context']);
  let traceId: string | undefined;
  let spanId: string | undefined;
  if (cloud) {
    const m = /^([0-9a-fA-F]{32})(?:\/(\d+))?/.exec(cloud);
    traceId = m?.[1];
    spanId = m?.[2];
  } else {
    const parent = first(headers.traceparent);
    const m = parent ? /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-/.exec(parent) : null;
    traceId = m?.[1];
    spanId = m?.[2];
  }
  if (!traceId) return {};
  const fields: Record<string, string> = {
    'logging.googleapis.com/trace': `projects/${projectId}/traces/${traceId}`,
  };
  if (spanId) fields['logging.googleapis.com/spanId'] = spanId;
  return fields;
}
