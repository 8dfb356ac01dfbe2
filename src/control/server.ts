// The control API: steer a running proxy over HTTP on loopback. Every request needs the
// random bearer token, because anything on the runner can reach a loopback port.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { InputError } from '../errors.js';
import { parseDelay } from '../policy/delay.js';
import { formatFault, parseFaults } from '../policy/faults.js';
import type { Session } from '../session.js';

export interface ControlServer {
  /** Base URL, without the token. */
  url: string;
  token: string;
  close(): Promise<void>;
}

const MAX_BODY = 64 * 1024;

type Reply = { status: number; body: unknown };
type Route = (session: Session, body: string) => Reply;

const ok = (body: unknown): Reply => ({ status: 200, body });

/** Routes by `METHOD /path`. Changes apply to calls that start after them and are noted in the traffic log. */
const ROUTES: Record<string, Route> = {
  'GET /health': (s) => ok({ ok: true, paused: s.engine.paused(), address: s.address }),
  'GET /stats': (s) => ok(s.snapshot()),
  'PUT /delay': (s, body) => {
    const delay = parseDelay(body.trim(), 'delay');
    s.policy.setDelay(delay);
    s.traffic.note({ event: 'control', action: 'delay', delay: delay.text });
    return ok({ delay: delay.text });
  },
  'PUT /faults': (s, body) => {
    const faults = parseFaults(body, 'faults');
    s.policy.setFaults(faults);
    const lines = faults.map(formatFault);
    s.traffic.note({ event: 'control', action: 'faults', faults: lines });
    return ok({ faults: lines });
  },
  'POST /pause': (s) => {
    s.engine.pause();
    s.traffic.note({ event: 'control', action: 'pause' });
    return ok({ paused: true });
  },
  'POST /resume': (s) => {
    s.engine.resume();
    s.traffic.note({ event: 'control', action: 'resume' });
    return ok({ paused: false });
  },
  'POST /reset': (s) => {
    s.recorder.reset();
    s.traffic.note({ event: 'control', action: 'reset' });
    return ok({ reset: true });
  },
};

export async function startControlServer(session: Session, opts: { port?: number } = {}): Promise<ControlServer> {
  const token = randomBytes(24).toString('hex');
  const expected = Buffer.from(`Bearer ${token}`);
  const server = http.createServer((req, res) => {
    const send = ({ status, body }: Reply) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify(body)}\n`);
    };
    const given = Buffer.from(req.headers.authorization ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      send({ status: 401, body: { error: 'missing or wrong bearer token (SLOW_PROXY_TOKEN)' } });
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    const route = ROUTES[`${req.method} ${path}`];
    if (!route) {
      const known = Object.keys(ROUTES).some((key) => key.endsWith(` ${path}`));
      send(known ? { status: 405, body: { error: `${req.method} is not allowed on ${path}` } } : { status: 404, body: { error: `no such endpoint: ${path}` } });
      return;
    }
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (b: Buffer) => {
      size += b.length;
      if (size <= MAX_BODY) parts.push(b);
    });
    req.on('end', () => {
      if (size > MAX_BODY) return send({ status: 413, body: { error: `body over ${MAX_BODY} bytes` } });
      try {
        send(route(session, Buffer.concat(parts).toString('utf8')));
      } catch (err) {
        if (err instanceof InputError) send({ status: 400, body: { error: err.message } });
        else send({ status: 500, body: { error: err instanceof Error ? err.message : String(err) } });
      }
    });
  });
  server.listen({ host: '127.0.0.1', port: opts.port ?? 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    token,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
