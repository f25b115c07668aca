import type { ServerResponse } from 'node:http';
import { sendJson } from './json-response.js';

/**
 * Checks every server of the local cloud that a browser could reach makes before anything else.
 *
 * DNS rebinding: a web page on evil.example can have its own name resolve to 127.0.0.1 and then
 * talk to a loopback server as its "same origin", with the local developer's rights. Such requests
 * carry the page's host name in `Host`, so only the loopback names of the port a server listens on
 * are served (`127.0.0.1:P`, `localhost:P`, `[::1]:P`); anything else is 403 before routing.
 */
export function servesHost(host: string | undefined, port: number): boolean {
  if (!host) return false;
  const h = host.toLowerCase();
  return h === `127.0.0.1:${port}` || h === `localhost:${port}` || h === `[::1]:${port}`;
}

/** The jobs API's error shape, `{error:{code, status, message}}`, never sniffed as another type. */
export function sendJsonError(res: ServerResponse, code: number, status: string, message: string): void {
  sendJson(res, code, { error: { code, status, message } }, { 'x-content-type-options': 'nosniff' });
}
