// The small protocol between the bench and its child processes (upstream servers, proxy):
// the child announces its ports once, then answers numbered requests over Node's IPC channel.
// IPC is used only between measurements, never while traffic is timed.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export type Request = { id: number; cmd: 'rss' } | { id: number; cmd: 'calls' } | { id: number; cmd: 'close' };

export interface Memory {
  rss: number;
  heapUsed: number;
}

/** One proxied call as the proxy saw it, keyed by the client's address so the bench can match its own timing. */
export interface ProxyCall {
  client: string;
  connCall: number;
  delayMs: number;
  waitMs: number;
  outcome: string;
}

export type Reply = { id: number; memory: Memory } | { id: number; calls: ProxyCall[] };

export interface Ready {
  ports: Record<string, number>;
}

const here = path.dirname(fileURLToPath(import.meta.url));

export class Child {
  private nextId = 0;
  private readonly waiting = new Map<number, (reply: Reply) => void>();

  private constructor(
    private readonly child: ChildProcess,
    readonly ports: Record<string, number>,
  ) {
    child.on('message', (message: Reply) => {
      this.waiting.get(message.id)?.(message);
      this.waiting.delete(message.id);
    });
  }

  /** Starts `file` (in this folder) with tsx and waits until it reports its ports. */
  static async start(file: string, config: unknown): Promise<Child> {
    const child = spawn(process.execPath, ['--import', 'tsx', '--expose-gc', path.join(here, file), JSON.stringify(config)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const [ready] = (await Promise.race([
      once(child, 'message'),
      once(child, 'exit').then(([code]) => Promise.reject(new Error(`${file} exited with code ${String(code)} before it was ready`))),
    ])) as [Ready];
    return new Child(child, ready.ports);
  }

  private ask(cmd: Request['cmd']): Promise<Reply> {
    const id = ++this.nextId;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.child.send({ id, cmd } satisfies Request);
    });
  }

  /** Memory after a full garbage collection in the child. */
  async memory(): Promise<Memory> {
    const reply = await this.ask('rss');
    if (!('memory' in reply)) throw new Error('unexpected reply to rss');
    return reply.memory;
  }

  async calls(): Promise<ProxyCall[]> {
    const reply = await this.ask('calls');
    if (!('calls' in reply)) throw new Error('unexpected reply to calls');
    return reply.calls;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.send({ id: ++this.nextId, cmd: 'close' } satisfies Request);
    await exited;
  }
}

/** In a child: answer the bench's requests. */
export function serve(ready: Ready, handlers: { calls?: () => ProxyCall[]; close: () => Promise<void> }): void {
  const send = (reply: Reply | Ready) => process.send?.(reply);
  process.on('message', (message: Request) => {
    if (message.cmd === 'rss') {
      send({ id: message.id, memory: collectedMemory() });
    } else if (message.cmd === 'calls') {
      send({ id: message.id, calls: handlers.calls?.() ?? [] });
    } else {
      void handlers.close().then(() => process.exit(0));
    }
  });
  send(ready);
}

function collectedMemory(): Memory {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with --expose-gc');
  gc();
  gc();
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heapUsed };
}
