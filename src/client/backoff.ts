/**
 * Retry delays: cockatiel's ExponentialBackoff with its full-jitter generator (the n-th retry
 * waits a uniformly random time in [0, min(maxDelay, initialDelay * 2^n))), clamped so that no
 * wait outlasts the call's time budget.
 */
import { ExponentialBackoff, fullJitterGenerator, type IBackoff, type IBackoffFactory } from 'cockatiel';

export function fullJitterBackoff(initialDelayMs: number, maxDelayMs: number): IBackoffFactory<unknown> {
  return new ExponentialBackoff<number>({ generator: fullJitterGenerator, initialDelay: initialDelayMs, maxDelay: maxDelayMs, exponent: 2 });
}

/** Wraps a backoff so that every delay ends before `deadline` (a performance.now() time). */
export class BudgetedBackoff<C> implements IBackoffFactory<C> {
  constructor(private readonly inner: IBackoffFactory<C>, private readonly deadline: number) {}

  next(context: C): IBackoff<C> {
    return clamp(this.inner.next(context), this.deadline);
  }
}

function clamp<C>(backoff: IBackoff<C>, deadline: number): IBackoff<C> {
  return {
    duration: Math.max(0, Math.min(backoff.duration, deadline - performance.now() - 1)),
    next: (context: C) => clamp(backoff.next(context), deadline),
  };
}

/**
 * Hands each delay to `defer` and tells cockatiel to wait 0 ms: the caller sleeps the delay
 * itself, abortably, at the start of the next attempt. (cockatiel's own retry sleep ignores the
 * abort signal, so an aborted call or a closed client would otherwise wait it out.)
 */
export class DeferredBackoff<C> implements IBackoffFactory<C> {
  constructor(private readonly inner: IBackoffFactory<C>, private readonly defer: (delayMs: number) => void) {}

  next(context: C): IBackoff<C> {
    return deferred(this.inner.next(context), this.defer);
  }
}

function deferred<C>(backoff: IBackoff<C>, defer: (delayMs: number) => void): IBackoff<C> {
  defer(backoff.duration);
  return { duration: 0, next: (context: C) => deferred(backoff.next(context), defer) };
}

/** One full-jitter delay for the n-th retry (n from 0), for loops that are not cockatiel policies. */
export function fullJitterDelay(retry: number, initialDelayMs: number, maxDelayMs: number): number {
  const [delay] = fullJitterGenerator(retry, { generator: fullJitterGenerator, initialDelay: initialDelayMs, maxDelay: maxDelayMs, exponent: 2 });
  return delay;
}

/** Sleeps `ms`, or less if `signal` aborts (it then resolves, it does not reject). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true || ms <= 0) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
