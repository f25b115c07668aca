/**
 * `promise`, or the signal's reason as soon as it aborts. A deadline must hold even over a stream
 * whose destruction waits on something that never comes (a source blocked in its own `await`): the
 * caller gets its answer at the deadline and the abandoned promise settles, or not, on its own.
 */
export function abortable<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      promise.catch(() => undefined);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
