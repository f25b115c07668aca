import { status } from '@grpc/grpc-js';

/** An error that the gRPC layer returns with its own status code, as the real service does. */
export class RpcError extends Error {
  readonly code: status;

  constructor(code: status, message: string) {
    super(message);
    this.name = 'RpcError';
    this.code = code;
  }
}

/** NOT_FOUND with the real service's wording for a missing resource. */
export function notFound(what: string): RpcError {
  return new RpcError(status.NOT_FOUND, `Requested entity was not found: ${what}`);
}

/** INVALID_ARGUMENT naming the offending field. */
export function invalidArgument(message: string): RpcError {
  return new RpcError(status.INVALID_ARGUMENT, message);
}
