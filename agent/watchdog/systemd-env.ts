/**
 * What systemd asks of this process, from the environment it starts a
 * service with (sd_notify(3), sd_watchdog_enabled(3)). Pure.
 */
export interface SystemdNotifyTarget {
  /** NOTIFY_SOCKET: a path, or `@name` for an abstract socket. */
  socket: string;
  /** WATCHDOG_USEC in ms when the watchdog is meant for this process, else null. */
  watchdogMs: number | null;
  /** Why a watchdog in the environment is not for this process, for the log. */
  ignored?: string;
}

/** null when no service manager listens (NOTIFY_SOCKET unset or empty). */
export function systemdNotifyTarget(env: Readonly<Record<string, string | undefined>>, pid: number): SystemdNotifyTarget | null {
  const socket = env.NOTIFY_SOCKET;
  if (socket === undefined || socket === '' || !(socket.startsWith('/') || socket.startsWith('@'))) return null;
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined) return { socket, watchdogMs: null };
  if (!/^[1-9]\d{0,15}$/.test(usec)) return { socket, watchdogMs: null, ignored: `WATCHDOG_USEC=${usec} is not a positive number of microseconds` };
  // A wrapper that started us keeps WATCHDOG_PID pointing at itself: the watchdog is its own, not ours.
  const watchdogPid = env.WATCHDOG_PID;
  if (watchdogPid !== undefined && watchdogPid !== String(pid)) return { socket, watchdogMs: null, ignored: `WATCHDOG_PID=${watchdogPid} names another process` };
  return { socket, watchdogMs: Math.floor(Number(usec) / 1000) };
}
