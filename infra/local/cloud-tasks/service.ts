import * as grpc from '@grpc/grpc-js';
import { sleep } from '../../../functions/api/sleep.js';
import { invalidArgument, notFound, RpcError } from './errors.js';
import type {
  CreateQueueRequest,
  CreateTaskRequest,
  GetTaskRequest,
  ListQueuesRequest,
  ListQueuesResponse,
  ListTasksRequest,
  ListTasksResponse,
  NameRequest,
  QueueMessage,
  TaskMessage,
  UpdateQueueRequest,
} from './messages.js';
import type { QueueRuntime } from './queue.js';
import type { Registry } from './registry.js';
import {
  applyQueueMessage,
  checkLocationName,
  checkQueueName,
  defaultQueueConfig,
  queueToMessage,
  splitTaskName,
  taskFromMessage,
  taskToMessage,
} from './resources.js';

const MAX_QUEUE_PAGE = 9800;
const MAX_TASK_PAGE = 1000;

type Empty = Record<string, never>;

/**
 * Wraps a synchronous handler body: its value is the response, an {@link RpcError} becomes its
 * status, anything else INTERNAL (with the message, since this is a local tool).
 */
function unary<Req, Res>(body: (request: Req) => Res): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    try {
      callback(null, body(call.request));
    } catch (error) {
      if (error instanceof RpcError) callback({ code: error.code, details: error.message }, null);
      else
        callback(
          { code: grpc.status.INTERNAL, details: error instanceof Error ? error.message : String(error) },
          null,
        );
    }
  };
}

/** {@link unary} for a handler that has to wait (CreateTask held back by the 500/50/5 limit). */
function unaryAsync<Req, Res>(body: (request: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    body(call.request).then(
      (response) => callback(null, response),
      (error: unknown) => {
        if (error instanceof RpcError) callback({ code: error.code, details: error.message }, null);
        else
          callback(
            { code: grpc.status.INTERNAL, details: error instanceof Error ? error.message : String(error) },
            null,
          );
      },
    );
  };
}

/**
 * Lets one CreateTask through the queue's 500/50/5 limit: at once, after waiting for room
 * (`onExceed: 'delay'`), or not at all (RESOURCE_EXHAUSTED, gRPC code 8). Returns the queue as it
 * is once admitted (it may have been deleted meanwhile).
 */
async function admitCreate(registry: Registry, queueName: string): Promise<QueueRuntime> {
  let queue = registry.queue(queueName);
  const started = Date.now();
  let held = false;
  for (;;) {
    const decision = queue.admission.admit(Date.now());
    if (decision.ok) return queue;
    const ramp = registry.currentSettings().behaviours.createRamp;
    const waited = Date.now() - started;
    if (ramp === false || ramp.onExceed === 'reject' || waited + decision.retryInMs > ramp.maxDelayMs) {
      queue.admission.rejected++;
      throw new RpcError(
        grpc.status.RESOURCE_EXHAUSTED,
        `Queue ${queueName} is taking tasks faster than it has scaled to (${Math.floor(decision.limit)} CreateTask/s now; ` +
          'ramp up by the 500/50/5 rule: at most 500/s on a cold queue, then +50% every 5 minutes)',
      );
    }
    if (!held) queue.admission.delayed++;
    held = true;
    await sleep(decision.retryInMs);
    queue = registry.queue(queueName);
  }
}

function pageOf<T>(
  items: T[],
  pageSize: number | null | undefined,
  pageToken: string | null | undefined,
  max: number,
) {
  if (pageSize !== null && pageSize !== undefined && pageSize < 0)
    throw invalidArgument('page_size must not be negative');
  const size = pageSize ? Math.min(pageSize, max) : max;
  let offset = 0;
  if (pageToken) {
    offset = Number(Buffer.from(pageToken, 'base64url').toString('utf8'));
    if (!Number.isInteger(offset) || offset < 0) throw invalidArgument('page_token is invalid');
  }
  const page = items.slice(offset, offset + size);
  const next = offset + size < items.length ? Buffer.from(String(offset + size)).toString('base64url') : '';
  return { page, next };
}

/** ListQueues' filter: only `state` comparisons (`state: PAUSED`, `state = RUNNING`, `state != …`). */
function queueFilter(filter: string | null | undefined): (queue: QueueRuntime) => boolean {
  const text = filter?.trim() ?? '';
  if (text === '') return () => true;
  const match = /^state\s*(:|=|!=)\s*"?([A-Z_]+)"?$/.exec(text);
  if (!match)
    throw invalidArgument(`Unsupported filter "${text}"; the emulator understands state comparisons only`);
  const [, op, value] = match;
  return (queue) => (op === '!=' ? queue.state !== value : queue.state === value);
}

function taskLocation(registry: Registry, name: string): { queue: QueueRuntime; taskId: string } {
  const { queueName, taskId } = splitTaskName(name);
  if (!registry.hasQueue(queueName)) throw notFound(name);
  return { queue: registry.queue(queueName), taskId };
}

/** The gRPC implementation of google.cloud.tasks.v2.CloudTasks over a {@link Registry}. */
export function createCloudTasksHandlers(registry: Registry): grpc.UntypedServiceImplementation {
  const unimplemented: grpc.handleUnaryCall<unknown, unknown> = (_call, callback) =>
    callback({ code: grpc.status.UNIMPLEMENTED, details: 'IAM is not emulated' }, null);
  const behaviours = () => registry.currentSettings().behaviours;
  const burstRule = () => behaviours().burst;

  return {
    ListQueues: unary<ListQueuesRequest, ListQueuesResponse>((request) => {
      checkLocationName(request.parent);
      const matching = registry.queuesUnder(request.parent).filter(queueFilter(request.filter));
      const { page, next } = pageOf(matching, request.pageSize, request.pageToken, MAX_QUEUE_PAGE);
      return { queues: page.map(queueToMessage), nextPageToken: next };
    }),

    GetQueue: unary<NameRequest, QueueMessage>((request) => {
      checkQueueName(request.name);
      return queueToMessage(registry.queue(request.name));
    }),

    CreateQueue: unary<CreateQueueRequest, QueueMessage>((request) => {
      checkLocationName(request.parent);
      const message = request.queue;
      if (!message) throw invalidArgument('queue is required');
      const name = message.name ?? '';
      if (checkQueueName(name) !== request.parent) {
        throw invalidArgument(`queue.name "${name}" is not under parent "${request.parent}"`);
      }
      const config = applyQueueMessage(message, defaultQueueConfig(), undefined, burstRule());
      return queueToMessage(registry.createQueue(name, config));
    }),

    UpdateQueue: unary<UpdateQueueRequest, QueueMessage>((request) => {
      const message = request.queue;
      if (!message) throw invalidArgument('queue is required');
      const name = message.name ?? '';
      checkQueueName(name);
      const paths = request.updateMask?.paths ?? [];
      const mask = paths.length > 0 ? paths : undefined;
      // Upstream UpdateQueue creates the queue when it does not exist.
      if (!registry.hasQueue(name)) {
        return queueToMessage(
          registry.createQueue(name, applyQueueMessage(message, defaultQueueConfig(), mask, burstRule())),
        );
      }
      const queue = registry.queue(name);
      const current = {
        rateLimits: { ...queue.rateLimits },
        burstExplicit: queue.burstExplicit,
        retry: { ...queue.retry },
        ...(queue.samplingRatio !== undefined ? { samplingRatio: queue.samplingRatio } : {}),
      };
      queue.reconfigure(applyQueueMessage(message, current, mask, burstRule()));
      return queueToMessage(queue);
    }),

    DeleteQueue: unary<NameRequest, Empty>((request) => {
      checkQueueName(request.name);
      registry.deleteQueue(request.name);
      return {};
    }),

    PurgeQueue: unary<NameRequest, QueueMessage>((request) => {
      checkQueueName(request.name);
      const queue = registry.queue(request.name);
      queue.purge();
      return queueToMessage(queue);
    }),

    PauseQueue: unary<NameRequest, QueueMessage>((request) => {
      checkQueueName(request.name);
      const queue = registry.queue(request.name);
      queue.pause();
      return queueToMessage(queue);
    }),

    ResumeQueue: unary<NameRequest, QueueMessage>((request) => {
      checkQueueName(request.name);
      const queue = registry.queue(request.name);
      queue.resume();
      return queueToMessage(queue);
    }),

    GetIamPolicy: unimplemented,
    SetIamPolicy: unimplemented,
    TestIamPermissions: unimplemented,

    ListTasks: unary<ListTasksRequest, ListTasksResponse>((request) => {
      checkQueueName(request.parent);
      const queue = registry.queue(request.parent);
      const { page, next } = pageOf(queue.listTasks(), request.pageSize, request.pageToken, MAX_TASK_PAGE);
      return { tasks: page.map((task) => taskToMessage(task, request.responseView)), nextPageToken: next };
    }),

    GetTask: unary<GetTaskRequest, TaskMessage>((request) => {
      const { queue, taskId } = taskLocation(registry, request.name);
      const task = queue.getTask(taskId);
      if (task === undefined) throw notFound(request.name);
      return taskToMessage(task, request.responseView);
    }),

    CreateTask: unaryAsync<CreateTaskRequest, TaskMessage>(async (request) => {
      checkQueueName(request.parent);
      const queue = await admitCreate(registry, request.parent);
      const message = request.task;
      if (!message) throw invalidArgument('task is required');
      const now = Date.now();
      let name = message.name ?? '';
      let taskId: string;
      if (name === '') {
        taskId = registry.generateTaskId(queue);
        name = `${queue.name}/tasks/${taskId}`;
      } else {
        const parts = splitTaskName(name);
        if (parts.queueName !== queue.name)
          throw invalidArgument(`task.name "${name}" is not in queue ${queue.name}`);
        taskId = parts.taskId;
        registry.checkTaskNameFree(queue, name, taskId, now);
      }
      const task = taskFromMessage(message, name, taskId, now, behaviours().maxScheduleAheadMs);
      // The response shows the task as created, before the dispatcher may pick it up.
      const created = taskToMessage(task, request.responseView);
      queue.addTask(task);
      return created;
    }),

    DeleteTask: unary<NameRequest, Empty>((request) => {
      const { queue, taskId } = taskLocation(registry, request.name);
      if (!queue.deleteTask(taskId)) throw notFound(request.name);
      return {};
    }),

    RunTask: unary<GetTaskRequest, TaskMessage>((request) => {
      const { queue, taskId } = taskLocation(registry, request.name);
      const task = queue.runTask(taskId);
      if (task === undefined) throw notFound(request.name);
      return taskToMessage(task, request.responseView);
    }),
  };
}
