import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createFirestoreTally, type FirestoreUsage } from './firestore-tally.js';

/**
 * A counting proxy in front of the Firestore emulator, for the cost benchmark only: the emulator
 * (Google's jar) reports no read or write counts, and counting in our store layer would miss what
 * the client does on its own (transaction retries, BulkWriter batches). Point
 * `FIRESTORE_EMULATOR_HOST` at `host`: every gRPC call of google.firestore.v1.Firestore is passed
 * through as bytes, unchanged, and decoded on the side to be tallied (firestore-tally.ts has the
 * billing rules and what they leave out). Only gRPC: the emulator's REST routes (reset) are not
 * proxied, and a call through the proxy costs a hop of latency.
 */
export interface FirestoreMeter {
  /** `127.0.0.1:PORT`, for FIRESTORE_EMULATOR_HOST. */
  host: string;
  usage(): FirestoreUsage;
  close(): Promise<void>;
}

const SERVICE = 'google.firestore.v1.Firestore';

function loadFirestoreService(): protoLoader.ServiceDefinition {
  const req = createRequire(import.meta.url);
  // The package's `exports` hide its package.json: its root is three levels above build/src/index.js.
  const root = dirname(dirname(dirname(req.resolve('@google-cloud/firestore'))));
  const json = JSON.parse(readFileSync(join(root, 'build', 'protos', 'v1.json'), 'utf8'));
  const definition = protoLoader.fromJSON(json, { longs: String, enums: String, oneofs: true });
  return definition[SERVICE] as protoLoader.ServiceDefinition;
}

const asIs = (b: Buffer) => b;
type Decoded = Record<string, unknown>;

export async function startFirestoreMeter(upstream: string): Promise<FirestoreMeter> {
  const service = loadFirestoreService();
  const tally = createFirestoreTally();
  const client = new grpc.Client(upstream, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': -1,
    'grpc.max_send_message_length': -1,
  });
  const passthrough: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const [rpc, method] of Object.entries(service)) {
    passthrough[rpc] = {
      path: method.path,
      requestStream: method.requestStream,
      responseStream: method.responseStream,
      requestSerialize: asIs,
      requestDeserialize: asIs,
      responseSerialize: asIs,
      responseDeserialize: asIs,
    };
    const decodeRequest = (b: Buffer) => method.requestDeserialize(b) as Decoded;
    const decodeResponse = (b: Buffer) => method.responseDeserialize(b) as Decoded;
    if (!method.requestStream && !method.responseStream) {
      handlers[rpc] = unaryHandler(client, method.path, (request, response) => {
        tally.call(rpc);
        tally.unary(rpc, decodeRequest(request), decodeResponse(response));
      });
    } else if (!method.requestStream) {
      handlers[rpc] = serverStreamHandler(client, method.path, (request) => {
        tally.call(rpc);
        const decoded = decodeRequest(request);
        let carried = 0;
        return {
          onMessage: (b) => {
            carried += tally.streamed(rpc, decoded, decodeResponse(b));
          },
          onEnd: () => tally.streamEnded(rpc, carried),
        };
      });
    } else {
      handlers[rpc] = bidiHandler(
        client,
        method.path,
        () => tally.call(rpc),
        (b) => {
          tally.streamed(rpc, {}, decodeResponse(b));
        },
      );
    }
  }
  const server = new grpc.Server({
    'grpc.max_receive_message_length': -1,
    'grpc.max_send_message_length': -1,
  });
  server.addService(passthrough as grpc.ServiceDefinition, handlers);
  const port = await new Promise<number>((ok, fail) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? fail(e) : ok(p))),
  );
  return {
    host: `127.0.0.1:${port}`,
    usage: () => tally.usage(),
    close: () =>
      new Promise<void>((ok) => {
        client.close();
        server.tryShutdown(() => ok());
        setTimeout(() => {
          server.forceShutdown();
          ok();
        }, 1000).unref();
      }),
  };
}

function unaryHandler(
  client: grpc.Client,
  path: string,
  onOk: (request: Buffer, response: Buffer) => void,
): grpc.handleUnaryCall<Buffer, Buffer> {
  return (call, callback) => {
    client.makeUnaryRequest(
      path,
      asIs,
      asIs,
      call.request,
      call.metadata,
      { deadline: call.getDeadline() },
      (err, value) => {
        if (err || !value) return callback(err);
        onOk(call.request, value);
        callback(null, value);
      },
    );
  };
}

function serverStreamHandler(
  client: grpc.Client,
  path: string,
  begin: (request: Buffer) => { onMessage: (b: Buffer) => void; onEnd: () => void },
): grpc.handleServerStreamingCall<Buffer, Buffer> {
  return (call) => {
    const counting = begin(call.request);
    const upstream = client.makeServerStreamRequest(path, asIs, asIs, call.request, call.metadata, {
      deadline: call.getDeadline(),
    });
    call.on('cancelled', () => upstream.cancel());
    upstream.on('data', (b: Buffer) => {
      counting.onMessage(b);
      call.write(b);
    });
    upstream.on('error', (err) => call.emit('error', err));
    upstream.on('end', () => {
      counting.onEnd();
      call.end();
    });
  };
}

function bidiHandler(
  client: grpc.Client,
  path: string,
  begin: () => void,
  onMessage: (b: Buffer) => void,
): grpc.handleBidiStreamingCall<Buffer, Buffer> {
  return (call) => {
    begin();
    const upstream = client.makeBidiStreamRequest(path, asIs, asIs, call.metadata, {
      deadline: call.getDeadline(),
    });
    call.on('data', (b: Buffer) => upstream.write(b));
    call.on('end', () => upstream.end());
    call.on('cancelled', () => upstream.cancel());
    upstream.on('data', (b: Buffer) => {
      onMessage(b);
      call.write(b);
    });
    upstream.on('error', (err) => call.emit('error', err));
    upstream.on('end', () => call.end());
  };
}
