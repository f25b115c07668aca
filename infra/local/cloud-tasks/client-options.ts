/**
 * How the official `CloudTasksClient` is pointed at the emulator: the platform's own function, so
 * the functions and the tests share one way of doing it.
 */
export { emulatorClientOptions as cloudTasksClientOptions } from '../../../functions/platform/task-queue.js';
