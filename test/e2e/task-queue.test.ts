import { CloudTasksClient } from '@google-cloud/tasks';
import { afterAll, describe, expect, it } from 'vitest';
import { createTaskQueue, emulatorClientOptions, itemTaskId } from '../../functions/platform/task-queue.js';
import { stack } from '../helpers/e2e.js';

/** The task queue against the local Cloud Tasks emulator, with the official client. */
describe('task queue on Cloud Tasks', () => {
  const client = new CloudTasksClient(emulatorClientOptions(stack().tasksEmulatorHost));
  afterAll(() => client.close());

  it('hands an item over to a new task on the queue a delivery came from, once per due second', async () => {
    // Arrange: a paused queue of its own, so the task stays there to be looked at.
    const location = client.locationPath(stack().projectId, 'us-central1');
    const queueName = `${location}/queues/fanout-handover-${Date.now()}`;
    await client.createQueue({ parent: location, queue: { name: queueName } });
    await client.pauseQueue({ name: queueName });
    const tasks = createTaskQueue({
      projectId: stack().projectId,
      region: 'us-central1',
      workerUrl: stack().workerUrl,
      emulatorHost: stack().tasksEmulatorHost,
      dispatchDeadlineSeconds: 35,
    });
    const dueMs = (Math.floor(Date.now() / 1000) + 60) * 1000;
    const task = { itemId: '000000007', index: 7, plannedMs: dueMs, handover: dueMs / 1000 };

    // Act: twice, as two deliveries of the same last attempt would: by the queue's short id, as the
    // X-CloudTasks-QueueName header carries it, and by its full name.
    await tasks.handOver(queueName.split('/').at(-1)!, 'job-h', task);
    await tasks.handOver(queueName, 'job-h', task);
    const [listed] = await client.listTasks({ parent: queueName, responseView: 'FULL' });

    // Assert
    expect(listed.map((t) => t.name)).toEqual([
      `${queueName}/tasks/${itemTaskId('job-h', '000000007')}-h${dueMs / 1000}`,
    ]);
    expect(Number(listed[0]?.scheduleTime?.seconds)).toBe(dueMs / 1000);
    expect(Number(listed[0]?.dispatchDeadline?.seconds)).toBe(35);
    expect(JSON.parse(Buffer.from(listed[0]!.httpRequest!.body as Uint8Array).toString())).toEqual({
      kind: 'item',
      jobId: 'job-h',
      itemId: '000000007',
      plannedMs: dueMs,
    });
  });
});
