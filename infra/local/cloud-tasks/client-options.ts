import { credentials } from '@grpc/grpc-js';

/**
 * Constructor options for `CloudTasksClient` that point it at an emulator over plain gRPC.
 * A type alias rather than an interface so it fits the client's index-signature `ClientOptions`.
 */
export type CloudTasksEmulatorClientOptions = {
  apiEndpoint: string;
  port: number;
  sslCreds: ReturnType<typeof credentials.createInsecure>;
};

/**
 * Options that make the production `CloudTasksClient` talk to the emulator at `host`
 * (`HOST:PORT`, the value of CLOUD_TASKS_EMULATOR_HOST): custom endpoint and port, and
 * insecure channel credentials, which also keep the client from fetching Google credentials.
 */
export function cloudTasksClientOptions(host: string): CloudTasksEmulatorClientOptions {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(host.trim());
  if (!match?.[1] || !match[2]) throw new Error(`CLOUD_TASKS_EMULATOR_HOST must be HOST:PORT, got "${host}"`);
  return { apiEndpoint: match[1], port: Number(match[2]), sslCreds: credentials.createInsecure() };
}
