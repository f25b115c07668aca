import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** The proto file, relative to the tasks package's `build/protos`, that declares the v2 service. */
const SERVICE_PROTO = 'google/cloud/tasks/v2/cloudtasks.proto';

/** Where the two proto trees live: the tasks package's own and google-gax's common ones. */
export interface ProtoIncludeDirs {
  tasks: string;
  gax: string;
}

/**
 * Walks up from a resolved entry file to the folder whose package.json names `pkg`.
 * The packages' `exports` maps block `require.resolve('<pkg>/package.json')`, so the
 * root is found from the main entry instead.
 */
function packageRootFrom(entry: string, pkg: string): string | undefined {
  let dir = dirname(entry);
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const parsed: unknown = JSON.parse(readFileSync(manifest, 'utf8'));
      if (typeof parsed === 'object' && parsed !== null && 'name' in parsed && parsed.name === pkg)
        return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function resolvePackageRoot(pkg: string, fromFile: string): string {
  try {
    const root = packageRootFrom(createRequire(fromFile).resolve(pkg), pkg);
    if (root !== undefined) return root;
  } catch {
    // Fall through to the working directory's node_modules below.
  }
  const fallback = join(process.cwd(), 'node_modules', pkg);
  if (existsSync(join(fallback, 'package.json'))) return fallback;
  throw new Error(`cannot find the installed package ${pkg}; run npm ci`);
}

/**
 * Finds the proto include dirs of the installed `@google-cloud/tasks` and the `google-gax`
 * it depends on, so the emulator serves exactly the API the production client speaks.
 */
export function resolveProtoIncludeDirs(): ProtoIncludeDirs {
  const tasksRoot = resolvePackageRoot('@google-cloud/tasks', import.meta.url);
  const gaxRoot = resolvePackageRoot('google-gax', join(tasksRoot, 'package.json'));
  return { tasks: join(tasksRoot, 'build', 'protos'), gax: join(gaxRoot, 'build', 'protos') };
}

/**
 * Loads `google.cloud.tasks.v2.CloudTasks` at run time. Decoding options are part of the
 * contract with the handlers: camelCase fields, enums as names, int64 as numbers, unset
 * messages as null and the `oneof` discriminators present.
 */
export function loadCloudTasksService(): grpc.ServiceDefinition {
  const dirs = resolveProtoIncludeDirs();
  const definition = protoLoader.loadSync(join(dirs.tasks, SERVICE_PROTO), {
    keepCase: false,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [dirs.tasks, dirs.gax],
  });
  const loaded = grpc.loadPackageDefinition(definition);
  const service = lookup(loaded, ['google', 'cloud', 'tasks', 'v2', 'CloudTasks']);
  if (typeof service !== 'function' || !('service' in service)) {
    throw new Error('google.cloud.tasks.v2.CloudTasks is missing from the loaded protos');
  }
  return service.service as grpc.ServiceDefinition;
}

function lookup(root: unknown, path: string[]): unknown {
  let node = root;
  for (const key of path) {
    if ((typeof node !== 'object' && typeof node !== 'function') || node === null) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}
