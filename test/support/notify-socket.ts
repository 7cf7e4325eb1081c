import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { settleWaiters } from './waiters.js';

/** One datagram as systemd would read it: the fields, and the sender's PID from the socket credentials. */
export interface NotifyMessage {
  /** Date.now() when the receiver printed it. */
  at: number;
  pid: number | null;
  fields: Record<string, string>;
  /** File descriptors that came with it (systemd-notify's barrier sends one; the receiver closes it). */
  fds: number;
}

// Node has no AF_UNIX datagram sockets; python3 has. The receiver asks for the
// sender's credentials (SO_PASSCRED) as systemd does, and closes every file
// descriptor it receives at once: systemd-notify's barrier waits for exactly that.
const RECEIVER = `
import array, json, os, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
print(json.dumps({"listening": True}), flush=True)
while True:
    data, anc, _flags, _addr = s.recvmsg(65536, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(64 * 4))
    pid, fds = None, []
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("3i", payload[:12])[0]
        elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            a = array.array("i")
            a.frombytes(payload[: len(payload) - len(payload) % 4])
            fds = list(a)
    for fd in fds:
        os.close(fd)
    print(json.dumps({"pid": pid, "text": data.decode("utf-8", "replace"), "fds": len(fds)}), flush=True)
`;

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Debian's own python3 (installed from python3-minimal when missing and we are root). */
function python(): string {
  if (existsSync('/usr/bin/python3')) return '/usr/bin/python3';
  if (have('python3')) return 'python3';
  if (process.getuid?.() !== 0) throw new Error('python3 is needed for the notify-socket tests (apt-get install python3-minimal, or run as root)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'python3-minimal'], { stdio: 'inherit', env });
  if (r.status !== 0) throw new Error('apt-get install python3-minimal failed');
  return '/usr/bin/python3';
}

/** A real AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET, with every message it received. */
export class NotifySocket {
  readonly messages: NotifyMessage[] = [];
  private readonly waiters: { match: (m: NotifyMessage) => boolean; resolve: (m: NotifyMessage) => void }[] = [];

  private constructor(readonly path: string, private readonly child: ChildProcess) {}

  static async open(path: string): Promise<NotifySocket> {
    const child = spawn(python(), ['-c', RECEIVER, path], { stdio: ['ignore', 'pipe', 'pipe'] });
    const socket = new NotifySocket(path, child);
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const lines = createInterface({ input: child.stdout });
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`notify receiver exited (${code}): ${stderr}`)));
      lines.on('line', (line) => {
        const parsed = JSON.parse(line) as { listening?: true; pid?: number | null; text?: string; fds?: number };
        if (parsed.listening === true) {
          resolve();
          return;
        }
        socket.received({ at: Date.now(), pid: parsed.pid ?? null, fields: parseFields(parsed.text ?? ''), fds: parsed.fds ?? 0 });
      });
    });
    return socket;
  }

  /** Messages carrying `key` (e.g. WATCHDOG), in arrival order. */
  with(key: string): NotifyMessage[] {
    return this.messages.filter((m) => m.fields[key] !== undefined);
  }

  /** Resolve with the first message (past or future) that matches. */
  waitFor(what: string, match: (m: NotifyMessage) => boolean, timeoutMs = 20_000): Promise<NotifyMessage> {
    const seen = this.messages.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what} on the notify socket within ${timeoutMs} ms; got ${JSON.stringify(this.messages)}`)), timeoutMs);
      this.waiters.push({ match, resolve: (m) => { clearTimeout(timer); resolve(m); } });
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }

  private received(m: NotifyMessage): void {
    this.messages.push(m);
    settleWaiters(this.waiters, m);
  }
}

function parseFields(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return fields;
}
