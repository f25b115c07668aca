import { describe, expect, it } from 'vitest';
import { createLogger, traceFields } from '../../../functions/platform/logger.js';
import { createLogCapture } from '../../helpers/log-capture.js';

describe('createLogger', () => {
  it('writes one JSON line per event with severity, message and the event name', () => {
    const capture = createLogCapture();
    const logger = createLogger({ destination: capture.stream });

    logger.info({ event: 'job.created', jobId: 'j1', total: 3 }, 'job created');
    logger.warn({ event: 'item.leased' }, 'another delivery holds this item');
    logger.error({ event: 'worker.error' }, 'task failed');

    const lines = capture.lines();
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatchObject({
      severity: 'INFO',
      message: 'job created',
      event: 'job.created',
      jobId: 'j1',
      total: 3,
    });
    expect(lines[1]).toMatchObject({ severity: 'WARNING', event: 'item.leased' });
    expect(lines[2]).toMatchObject({ severity: 'ERROR', event: 'worker.error' });
    expect(typeof lines[0]?.time).toBe('string');
    expect(lines[0]).not.toHaveProperty('level');
    expect(lines[0]).not.toHaveProperty('pid');
    expect(lines[0]).not.toHaveProperty('hostname');
  });

  it("adds a child's bindings to every line", () => {
    const capture = createLogCapture();
    const logger = createLogger({ destination: capture.stream });

    logger.child({ jobId: 'j1', itemId: '000000004' }).info({ event: 'item.succeeded' }, 'item succeeded');

    expect(capture.events('item.succeeded')).toEqual([
      expect.objectContaining({ jobId: 'j1', itemId: '000000004', severity: 'INFO' }),
    ]);
  });

  it('redacts authorization headers and API keys', () => {
    const capture = createLogCapture();
    const logger = createLogger({ destination: capture.stream });

    logger.info(
      {
        event: 'debug.request',
        authorization: 'Bearer eyJhbGciOiJSUzI1NiJ9.secret.sig',
        headers: { authorization: 'Bearer second-secret', 'content-type': 'application/json' },
        apiKey: 'AIza-secret',
        gemini: { apiKey: 'AIza-nested-secret' },
      },
      'request',
    );

    const text = JSON.stringify(capture.lines());
    expect(text).not.toContain('secret');
    expect(capture.lines()[0]).toMatchObject({
      authorization: '[redacted]',
      headers: { authorization: '[redacted]', 'content-type': 'application/json' },
      apiKey: '[redacted]',
      gemini: { apiKey: '[redacted]' },
    });
  });

  it('honours the level', () => {
    const capture = createLogCapture();
    const logger = createLogger({ level: 'warn', destination: capture.stream });

    logger.info({ event: 'quiet' }, 'not shown');
    logger.warn({ event: 'loud' }, 'shown');

    expect(capture.lines().map((l) => l.event)).toEqual(['loud']);
  });
});

describe('traceFields', () => {
  const trace = '105445aa7843bc8bf206b12000100000';

  it('reads X-Cloud-Trace-Context', () => {
    expect(traceFields({ 'x-cloud-trace-context': `${trace}/1;o=1` }, 'my-project')).toEqual({
      'logging.googleapis.com/trace': `projects/my-project/traces/${trace}`,
      'logging.googleapis.com/spanId': '1',
    });
  });

  it('reads X-Cloud-Trace-Context without a span', () => {
    expect(traceFields({ 'x-cloud-trace-context': trace }, 'p')).toEqual({
      'logging.googleapis.com/trace': `projects/p/traces/${trace}`,
    });
  });

  it('reads W3C traceparent', () => {
    const headers = { traceparent: `00-${trace}-00f067aa0ba902b7-01` };

    expect(traceFields(headers, 'my-project')).toEqual({
      'logging.googleapis.com/trace': `projects/my-project/traces/${trace}`,
      'logging.googleapis.com/spanId': '00f067aa0ba902b7',
    });
  });

  it('prefers X-Cloud-Trace-Context and takes the first of repeated headers', () => {
    const other = 'ffffffffffffffffffffffffffffffff';

    const fields = traceFields(
      {
        'x-cloud-trace-context': [`${trace}/7`, `${other}/8`],
        traceparent: `00-${other}-00f067aa0ba902b7-01`,
      },
      'p',
    );

    expect(fields['logging.googleapis.com/trace']).toBe(`projects/p/traces/${trace}`);
  });

  it('adds nothing without a usable header', () => {
    expect(traceFields({}, 'p')).toEqual({});
    expect(traceFields({ 'x-cloud-trace-context': 'not-a-trace' }, 'p')).toEqual({});
    expect(traceFields({ traceparent: 'garbage' }, 'p')).toEqual({});
  });
});
