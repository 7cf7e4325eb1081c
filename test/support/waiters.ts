/** Someone waiting for the first item that matches. */
export interface Waiter<T> {
  match: (item: T) => boolean;
  resolve: (item: T) => void;
}

/** Hand a new item to every waiter it matches, each of which then stops waiting. */
export function settleWaiters<T>(waiters: Waiter<T>[], item: T): void {
  for (const w of [...waiters]) {
    if (w.match(item)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(item);
    }
  }
}
