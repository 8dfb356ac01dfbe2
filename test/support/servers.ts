// Real PostgreSQL, Redis and OpenLDAP servers for integration tests, started from the
// Debian packages (.ci/install-servers.sh installs them). Each server runs as a child
// process of the test, in its own temp dir, on a free 127.0.0.1 port, and is torn down
// by `stop()` (or, as a last resort, when the test process exits).

import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, readdirSync, rmSync, writeFileSync, chownSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, delimiter } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { Client as LdapClient } from 'ldapts';

export type ServerKind = 'postgres' | 'redis' | 'ldap';

export interface RunningServer {
  host: '127.0.0.1';
  port: number;
  user?: string;
  password?: string;
  stop(): Promise<void>;
}

export interface PostgresServer extends RunningServer {
  user: string;
  password: string;
  database: string;
}

export interface RedisServer extends RunningServer {
  password: string;
}

export interface LdapServer extends RunningServer {
  /** The root DN. */
  user: string;
  password: string;
  baseDn: string;
  /** A seeded person who can bind with `personPassword`. */
  personDn: string;
  personPassword: string;
}

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 5_000;
const PORT_ATTEMPTS = 3;

const execFileAsync = promisify(execFile);

// --- finding binaries -------------------------------------------------------

function onPath(name: string, extraDirs: string[] = []): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), ...extraDirs];
  for (const dir of dirs) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** The newest /usr/lib/postgresql/<version>/bin holding both `postgres` and `initdb`. */
function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = join(root, v, 'bin');
    if (existsSync(join(bin, 'postgres')) && existsSync(join(bin, 'initdb'))) return bin;
  }
  return undefined;
}

interface Account {
  uid: number;
  gid: number;
}

function systemAccount(name: string): Account | undefined {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name) return { uid: Number(uid), gid: Number(gid) };
  }
  return undefined;
}

const isRoot = (): boolean => process.getuid?.() === 0;

/** PostgreSQL refuses to run as root, so as root it runs as the `postgres` account. */
function postgresAccount(): Account | undefined {
  return isRoot() ? systemAccount('postgres') : undefined;
}

function missingFor(kind: ServerKind): string[] {
  switch (kind) {
    case 'postgres': {
      const missing = postgresBinDir() ? [] : ['/usr/lib/postgresql/<version>/bin/{postgres,initdb}'];
      if (isRoot() && !systemAccount('postgres')) missing.push('the postgres account');
      return missing;
    }
    case 'redis':
      return onPath('redis-server') ? [] : ['redis-server'];
    case 'ldap': {
      const missing: string[] = [];
      if (!onPath('slapd', ['/usr/sbin'])) missing.push('slapd');
      if (!onPath('ldapadd')) missing.push('ldapadd');
      if (!existsSync('/usr/lib/ldap/back_mdb.so')) missing.push('/usr/lib/ldap/back_mdb.so');
      if (!existsSync('/etc/ldap/schema/inetorgperson.schema')) missing.push('/etc/ldap/schema');
      return missing;
    }
  }
}

/** Whether the binaries for `kind` are installed here. */
export function serverAvailable(kind: ServerKind): boolean {
  return missingFor(kind).length === 0;
}

/** Why `kind` cannot start here, for a test's skip reason; undefined when it can. */
export function unavailableReason(kind: ServerKind): string | undefined {
  const missing = missingFor(kind);
  return missing.length ? `${kind} not installed (missing ${missing.join(', ')}; see .ci/install-servers.sh)` : undefined;
}

// --- processes ----------------------------------------------------------------

/** Every server still running, so a crashed test run does not leave daemons behind. */
const live = new Set<{ child: ChildProcess; dir: string }>();
process.on('exit', () => {
  for (const { child, dir } of live) {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function logTail(logPath: string, lines = 30): string {
  try {
    return readFileSync(logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

interface Started {
  child: ChildProcess;
  exited: Promise<void>;
  hasExited(): boolean;
}

/** Starts a long-running server with its output in `logPath`, in its own process group. */
function startProcess(cmd: string, args: string[], logPath: string, account?: Account): Started {
  const logFd = openSync(logPath, 'a');
  const child = spawn(cmd, args, {
    stdio: ['ignore', logFd, logFd],
    detached: true,
    env: { ...process.env, LC_ALL: 'C' },
    ...(account ?? {}),
  });
  closeSync(logFd);
  let done = false;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      done = true;
      resolve();
    });
    child.once('error', (err) => {
      writeFileSync(logPath, `spawn ${cmd} failed: ${err.message}\n`, { flag: 'a' });
      done = true;
      resolve();
    });
  });
  return { child, exited, hasExited: () => done };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

class StartFailed extends Error {
  constructor(
    what: string,
    why: string,
    readonly log: string,
  ) {
    super(`${what} did not start: ${why}\n--- log tail ---\n${log}`);
  }
  get portTaken(): boolean {
    return /address already in use|could not bind/i.test(this.log);
  }
}

/** Polls `probe` until it resolves, the process dies, or the deadline passes. */
async function waitReady(what: string, proc: Started, logPath: string, probe: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError = 'never probed';
  while (Date.now() < deadline) {
    if (proc.hasExited()) {
      const { exitCode, signalCode } = proc.child;
      throw new StartFailed(what, `exited (${signalCode ?? `code ${exitCode}`})`, logTail(logPath));
    }
    try {
      await probe();
      return;
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    await sleep(100);
  }
  throw new StartFailed(what, `not ready after ${READY_TIMEOUT_MS} ms (last probe: ${lastError})`, logTail(logPath));
}

/** Sends `signal` to the server, then kills its whole process group if it lingers. */
async function stopProcess(proc: Started, signal: NodeJS.Signals): Promise<void> {
  const pid = proc.child.pid;
  if (pid === undefined || proc.hasExited()) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), STOP_GRACE_MS);
  });
  const how = await Promise.race([proc.exited.then(() => 'exited' as const), grace]);
  clearTimeout(timer);
  if (how === 'timeout') {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await proc.exited;
  }
}

/**
 * Runs `launch` on a free port, retrying on another port when the one picked was taken
 * in between (the port is free when picked, but nothing reserves it).
 */
async function onFreePort<T>(launch: (port: number) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(await freePort());
    } catch (err) {
      if (!(err instanceof StartFailed && err.portTaken && attempt < PORT_ATTEMPTS)) throw err;
    }
  }
}

/** Starts a server with its log in `dir`, waits until `probe` passes, and returns how to stop it. */
async function launchServer(
  what: string,
  dir: string,
  cmd: string,
  args: string[],
  signal: NodeJS.Signals,
  probe: () => Promise<void>,
  account?: Account,
): Promise<() => Promise<void>> {
  const logPath = join(dir, `${what}.log`);
  const proc = startProcess(cmd, args, logPath, account);
  const entry = { child: proc.child, dir };
  live.add(entry);
  const stop = async (): Promise<void> => {
    await stopProcess(proc, signal);
    live.delete(entry);
  };
  try {
    await waitReady(what, proc, logPath, probe);
  } catch (err) {
    await stop();
    throw err;
  }
  return stop;
}

function makeTempDir(kind: ServerKind, account?: Account): string {
  const dir = mkdtempSync(join(tmpdir(), `slow-proxy-${kind}-`));
  if (account) chownSync(dir, account.uid, account.gid);
  return dir;
}

function removeOnFailure<T>(dir: string, start: () => Promise<T>): Promise<T> {
  return start().catch((err: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  });
}

// --- PostgreSQL -------------------------------------------------------------------

export async function startPostgres(): Promise<PostgresServer> {
  const bin = postgresBinDir();
  if (!bin) throw new Error(unavailableReason('postgres'));
  const account = postgresAccount();
  const dir = makeTempDir('postgres', account);
  const user = 'proxytest';
  const password = 'pg-secret-1';
  const database = 'postgres';
  return removeOnFailure(dir, async () => {
    const pwfile = join(dir, 'pwfile');
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    if (account) chownSync(pwfile, account.uid, account.gid);
    const data = join(dir, 'data');
    // Password auth over TCP (scram), so clients do a real SASL exchange through the proxy.
    await execFileAsync(
      join(bin, 'initdb'),
      ['-D', data, '-U', user, `--pwfile=${pwfile}`, '--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--locale=C', '--no-sync'],
      { ...(account ?? {}), env: { ...process.env, LC_ALL: 'C' } },
    ).catch((err: { stderr?: string; message: string }) => {
      throw new Error(`initdb failed: ${err.message}\n${err.stderr ?? ''}`, { cause: err });
    });
    return onFreePort(async (port) => {
      const probe = async (): Promise<void> => {
        const client = new pg.Client({ host: HOST, port, user, password, database, connectionTimeoutMillis: 2000 });
        client.on('error', () => {});
        try {
          await client.connect();
          await client.query('select 1');
        } finally {
          await client.end().catch(() => {});
        }
      };
      const args = ['-D', data, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'fsync=off'];
      // SIGINT is PostgreSQL's "fast" shutdown: ends sessions at once, no waiting for clients.
      const stopServer = await launchServer('postgres', dir, join(bin, 'postgres'), args, 'SIGINT', probe, account);
      return {
        host: HOST,
        port,
        user,
        password,
        database,
        stop: async () => {
          await stopServer();
          rmSync(dir, { recursive: true, force: true });
        },
      } satisfies PostgresServer;
    });
  });
}

// --- Redis --------------------------------------------------------------------------

/** AUTH + PING over a raw socket: ready means it answers commands, not just accepts. */
function redisPing(port: number, password: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, HOST);
    let reply = '';
    const fail = (why: string): void => {
      socket.destroy();
      reject(new Error(why));
    };
    socket.setTimeout(2000, () => fail('ping timed out'));
    socket.on('error', (err) => fail(err.message));
    socket.on('connect', () => socket.write(`AUTH ${password}\r\nPING\r\n`));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply === '+OK\r\n+PONG\r\n') {
        socket.destroy();
        resolve();
      } else if (reply.startsWith('-') || reply.length > 11) {
        fail(`unexpected reply ${JSON.stringify(reply)}`);
      }
    });
  });
}

export async function startRedis(): Promise<RedisServer> {
  const cmd = onPath('redis-server');
  if (!cmd) throw new Error(unavailableReason('redis'));
  const dir = makeTempDir('redis');
  const password = 'redis-secret-1';
  return removeOnFailure(dir, () =>
    onFreePort(async (port) => {
      const args = [
        '--port', String(port),
        '--bind', HOST,
        '--dir', dir,
        '--save', '',
        '--appendonly', 'no',
        '--daemonize', 'no',
        '--requirepass', password,
      ];
      const stopServer = await launchServer('redis', dir, cmd, args, 'SIGTERM', () => redisPing(port, password));
      return {
        host: HOST,
        port,
        password,
        stop: async () => {
          await stopServer();
          rmSync(dir, { recursive: true, force: true });
        },
      } satisfies RedisServer;
    }),
  );
}

// --- OpenLDAP -------------------------------------------------------------------------

const BASE_DN = 'dc=example,dc=org';
const ROOT_DN = `cn=admin,${BASE_DN}`;

/** A few people in ou=people, the test data the LDAP tests search for. */
export const LDAP_PEOPLE = [
  { uid: 'alice', cn: 'Alice Liddell', sn: 'Liddell', mail: 'alice@example.org' },
  { uid: 'bob', cn: 'Bob Builder', sn: 'Builder', mail: 'bob@example.org' },
  { uid: 'carol', cn: 'Carol Danvers', sn: 'Danvers', mail: 'carol@example.org' },
] as const;

function seedLdif(personPassword: string): string {
  const people = LDAP_PEOPLE.map(
    (p) =>
      `dn: uid=${p.uid},ou=people,${BASE_DN}\nobjectClass: inetOrgPerson\nuid: ${p.uid}\ncn: ${p.cn}\nsn: ${p.sn}\nmail: ${p.mail}\nuserPassword: ${personPassword}\n`,
  );
  return [
    `dn: ${BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n`,
    `dn: ou=people,${BASE_DN}\nobjectClass: organizationalUnit\nou: people\n`,
    ...people,
  ].join('\n');
}

function slapdConf(dir: string, password: string): string {
  return [
    ...['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `include /etc/ldap/schema/${s}.schema`),
    `pidfile ${join(dir, 'slapd.pid')}`,
    `argsfile ${join(dir, 'slapd.args')}`,
    'modulepath /usr/lib/ldap',
    'moduleload back_mdb',
    'database mdb',
    'maxsize 104857600',
    `suffix "${BASE_DN}"`,
    `rootdn "${ROOT_DN}"`,
    `rootpw ${password}`,
    `directory ${join(dir, 'db')}`,
    'index objectClass eq',
    '',
  ].join('\n');
}

export async function startLdap(): Promise<LdapServer> {
  const cmd = onPath('slapd', ['/usr/sbin']);
  const ldapadd = onPath('ldapadd');
  if (!cmd || !ldapadd) throw new Error(unavailableReason('ldap'));
  const dir = makeTempDir('ldap');
  const password = 'ldap-secret-1';
  const personPassword = 'person-secret-1';
  return removeOnFailure(dir, async () => {
    const confPath = join(dir, 'slapd.conf');
    writeFileSync(confPath, slapdConf(dir, password));
    const ldifPath = join(dir, 'seed.ldif');
    writeFileSync(ldifPath, seedLdif(personPassword));
    const dbDir = join(dir, 'db');
    return onFreePort(async (port) => {
      // A fresh database per attempt: a slapd that failed on a taken port may have created one.
      rmSync(dbDir, { recursive: true, force: true });
      mkdirSync(dbDir);
      const url = `ldap://${HOST}:${port}/`;
      const probe = async (): Promise<void> => {
        const client = new LdapClient({ url, connectTimeout: 2000, timeout: 2000 });
        try {
          await client.bind(ROOT_DN, password);
        } finally {
          await client.unbind().catch(() => {});
        }
      };
      // `-d stats` keeps slapd in the foreground and logs config errors and operations.
      const stopServer = await launchServer('slapd', dir, cmd, ['-f', confPath, '-h', url, '-d', 'stats'], 'SIGTERM', probe);
      try {
        await execFileAsync(ldapadd, ['-x', '-H', url, '-D', ROOT_DN, '-w', password, '-f', ldifPath]);
      } catch (err) {
        await stopServer();
        const e = err as { stderr?: string; message: string };
        throw new Error(`ldapadd seeding failed: ${e.message}\n${e.stderr ?? ''}\n--- slapd log ---\n${logTail(join(dir, 'slapd.log'))}`, {
          cause: err,
        });
      }
      return {
        host: HOST,
        port,
        user: ROOT_DN,
        password,
        baseDn: BASE_DN,
        personDn: `uid=${LDAP_PEOPLE[0].uid},ou=people,${BASE_DN}`,
        personPassword,
        stop: async () => {
          await stopServer();
          rmSync(dir, { recursive: true, force: true });
        },
      } satisfies LdapServer;
    });
  });
}
