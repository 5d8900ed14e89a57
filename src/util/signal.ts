/** Waking waiters on "something happened" (data arrived, a stream closed), each wait bounded. */
export class ChangeSignal {
  private readonly waiters = new Set<() => void>();

  /** Wakes every current waiter. */
  notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /** Resolves on the next `notify()`, after `ms`, or when `signal` fires. */
  next(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(finish);
        signal?.removeEventListener('abort', finish);
        resolve();
      };
      const timer = setTimeout(finish, Math.max(0, ms));
      this.waiters.add(finish);
      signal?.addEventListener('abort', finish, { once: true });
    });
  }
}
