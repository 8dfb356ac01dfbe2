// The engine in front of real PostgreSQL, Redis and OpenLDAP servers, driven by the real
// client libraries apps use. What the engine reports (calls, outcomes, waits) is checked
// against what the client saw: an answer, a client-side timeout, a closed connection.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { Redis, type RedisOptions } from 'ioredis';
import { Client as LdapClient } from 'ldapts';
import { ProxyEngine } from '../src/proxy/engine.js';
import type { CallRecord, HoldContext, Planner, Target } from '../src/proxy/types.js';
import {
  LDAP_PEOPLE,
  startLdap,
  startPostgres,
  startRedis,
  unavailableReason,
  type LdapServer,
  type PostgresServer,
  type RedisServer,
  type ServerKind,
} from './support/servers.js';

/** The delay put on a request the client is meant to give up on. */
const SLOW_MS = 1500;
/** The client-side timeout that gives up on it. */
const CLIENT_TIMEOUT_MS = 400;
/** A delay short enough for the client to wait it out. */
const BEARABLE_MS = 500;

/**
 * Skip where the servers are not installed, but never in CI: there .ci/install-servers.sh
 * installs them, and a silent skip would hide a broken install.
 */
function skipUnlessInstalled(kind: ServerKind): string | false {
  if (process.env.CI) return false;
  return unavailableReason(kind) ?? false;
}

/**
 * A proxy in front of one server, with a planner the test steers: `slowNextRequest(ms)` holds
 * the next request to arrive (on any connection) that long. Responses are paced in 64 KiB
 * pieces, so large answers cross the proxy in many writes.
 */
class ProxyUnderTest {
  readonly engine: ProxyEngine;
  readonly ended: CallRecord[] = [];
  private readonly opened: number[] = [];
  private slowNext: number | null = null;
  private readonly slowedCalls: number[] = [];
  private readonly closedConns = new Set<number>();
  address!: Target;

  constructor(target: Target) {
    const planner: Planner = () => ({
      up: { hold: (ctx) => this.holdRequest(ctx) },
      down: { hold: () => 0, pacing: () => ({ pieceBytes: 64 * 1024, pauseAfter: () => 1 }) },
    });
    this.engine = new ProxyEngine({ target, planner });
    this.engine.on('open', (info) => this.opened.push(info.conn));
    this.engine.on('close', (ev) => this.closedConns.add(ev.conn));
    // The live record, not a copy: a call ends at its first response byte, and the engine keeps
    // counting the rest of the response into `bytesDown`.
    this.engine.on('callEnd', (call) => this.ended.push(call));
  }

  async start(): Promise<this> {
    this.address = await this.engine.listen();
    return this;
  }

  private holdRequest(ctx: HoldContext): number {
    if (!ctx.unitStart || this.slowNext === null || ctx.call === null) return 0;
    const ms = this.slowNext;
    this.slowNext = null;
    this.slowedCalls.push(ctx.call);
    return ms;
  }

  slowNextRequest(ms: number): void {
    this.slowNext = ms;
  }

  /** The call that took the last `slowNextRequest` delay. */
  lastSlowedCall(): number {
    const call = this.slowedCalls.at(-1);
    assert.ok(call !== undefined, 'no request was slowed');
    return call;
  }

  /** The connection accepted last (the tests open one client at a time). */
  lastConn(): number {
    const conn = this.opened.at(-1);
    assert.ok(conn !== undefined, 'no connection was accepted');
    return conn;
  }

  callsOn(conn: number): CallRecord[] {
    return this.ended.filter((c) => c.conn === conn).sort((a, b) => a.connCall - b.connCall);
  }

  /** Waits for call `call` to end: the engine may see a close a moment after the client made it. */
  async endOf(call: number, timeoutMs = 5000): Promise<CallRecord> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.ended.find((c) => c.call === call);
      if (found) return found;
      if (Date.now() > deadline) {
        throw new Error(`call ${call} did not end within ${timeoutMs} ms; ended: ${JSON.stringify(this.ended.map(brief))}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Waits until connection `conn` has closed, so its last call has ended. */
  async closed(conn: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closedConns.has(conn)) {
      if (Date.now() > deadline) throw new Error(`connection ${conn} still open after ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Every call the engine started has ended exactly once. */
  assertAllCallsEnded(): void {
    const numbers = this.ended.map((c) => c.call).sort((a, b) => a - b);
    assert.deepEqual(numbers, Array.from({ length: this.engine.counters().callsStarted }, (_, i) => i + 1));
  }
}

const brief = (c: CallRecord): string => `${c.conn}.${c.connCall}:${c.outcome}@${Math.round((c.endMs ?? NaN) - c.startMs)}ms`;
const wait = (c: CallRecord): number => (c.endMs ?? NaN) - c.startMs;
const outcomes = (calls: CallRecord[]): (string | null)[] => calls.map((c) => c.outcome);

const startProxy = (target: Target): Promise<ProxyUnderTest> => new ProxyUnderTest(target).start();

describe('PostgreSQL through the proxy (pg)', { skip: skipUnlessInstalled('postgres') }, () => {
  let server: PostgresServer;
  let proxy: ProxyUnderTest;

  before(async () => {
    server = await startPostgres();
    proxy = await startProxy(server);
  });
  after(async () => {
    await proxy?.engine.close();
    await server?.stop();
  });

  const client = (extra: pg.ClientConfig = {}): pg.Client =>
    new pg.Client({ ...proxy.address, user: server.user, password: server.password, database: server.database, ...extra });

  test('scram auth and queries are answered calls; the Terminate message is one-way', async () => {
    const db = client();
    await db.connect();
    const conn = proxy.lastConn();
    assert.equal((await db.query<{ n: number }>('select 1 + 1 as n')).rows[0].n, 2);
    assert.equal((await db.query<{ u: string }>('select current_user as u')).rows[0].u, server.user);
    await db.end();
    await proxy.closed(conn);

    const calls = proxy.callsOn(conn);
    // startup -> SASL challenge, SASL initial -> continue, SASL final -> ready; two queries; then
    // Terminate expects no answer and the client closes right after it: a one-way message, not a give-up.
    assert.deepEqual(outcomes(calls), ['answered', 'answered', 'answered', 'answered', 'answered', 'one-way'], calls.map(brief).join(' '));
    assert.ok(wait(calls[5]) < 200, `Terminate waited ${wait(calls[5])} ms`);
    assert.ok(calls.slice(0, 5).every((c) => c.bytesDown > 0 && c.delayMs === 0));
  });

  test('a 1 MiB result arrives intact in paced pieces', async () => {
    const db = client();
    await db.connect();
    const conn = proxy.lastConn();
    const { rows } = await db.query<{ s: string }>(
      "select string_agg(md5(i::text), '' order by i) as s from generate_series(1, 32768) i",
    );
    await db.end();
    await proxy.closed(conn);

    let expected = '';
    for (let i = 1; i <= 32768; i++) expected += createHash('md5').update(String(i)).digest('hex');
    assert.equal(rows[0].s.length, 1024 * 1024);
    assert.ok(rows[0].s === expected, 'the result differs from the md5 chain computed locally');
    const query = proxy.callsOn(conn)[3];
    assert.equal(query.outcome, 'answered');
    assert.ok(query.bytesDown > 1024 * 1024, `the query call counted ${query.bytesDown} response bytes`);
  });

  test('query_timeout gives up on a slow query: gave-up after about the timeout', async () => {
    const db = client({ query_timeout: CLIENT_TIMEOUT_MS });
    await db.connect();
    const conn = proxy.lastConn();
    assert.equal((await db.query<{ n: number }>('select 42 as n')).rows[0].n, 42);

    proxy.slowNextRequest(SLOW_MS);
    await assert.rejects(db.query('select 1'), /Query read timeout/);
    const slowed = proxy.lastSlowedCall();
    // pg leaves the connection open after a read timeout; an app that abandons it closes it.
    await db.end();
    const call = await proxy.endOf(slowed);
    // The held request still goes upstream, followed by the client's FIN, so the connection
    // lingers until the hold is over.
    await proxy.closed(conn);

    assert.equal(call.conn, conn);
    assert.equal(call.outcome, 'gave-up');
    assert.ok(wait(call) >= CLIENT_TIMEOUT_MS - 20 && wait(call) < SLOW_MS - 100, `waited ${wait(call)} ms`);
    assert.equal(call.delayMs, SLOW_MS);
    assert.deepEqual(outcomes(proxy.callsOn(conn)), ['answered', 'answered', 'answered', 'answered', 'gave-up']);
  });

  test('a delayed query the client waits out is answered, with the right rows', async () => {
    const db = client({ query_timeout: 10_000 });
    await db.connect();
    const conn = proxy.lastConn();
    proxy.slowNextRequest(BEARABLE_MS);
    const { rows } = await db.query<{ n: string }>('select count(*) as n from generate_series(1, 1000)');
    assert.equal(rows[0].n, '1000');
    const call = await proxy.endOf(proxy.lastSlowedCall());
    await db.end();
    await proxy.closed(conn);

    assert.equal(call.outcome, 'answered');
    assert.ok(wait(call) >= BEARABLE_MS - 20 && wait(call) < 3000, `waited ${wait(call)} ms`);
    assert.equal(call.delayMs, BEARABLE_MS);
  });

  test('every call the engine started ended exactly once', () => {
    proxy.assertAllCallsEnded();
    assert.equal(proxy.engine.counters().connectionsOpen, 0);
  });
});

describe('Redis through the proxy (ioredis)', { skip: skipUnlessInstalled('redis') }, () => {
  let server: RedisServer;
  let proxy: ProxyUnderTest;

  before(async () => {
    server = await startRedis();
    proxy = await startProxy(server);
  });
  after(async () => {
    await proxy?.engine.close();
    await server?.stop();
  });

  /** No reconnects, no offline queue: a dropped connection must stay dropped for the counts. */
  const connectClient = async (extra: RedisOptions = {}): Promise<Redis> => {
    const redis = new Redis({
      ...proxy.address,
      password: server.password,
      lazyConnect: true,
      retryStrategy: () => null,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      ...extra,
    });
    redis.on('error', () => {});
    await redis.connect();
    return redis;
  };

  test('auth and commands are answered calls; a 2 MiB value round-trips intact', async () => {
    const redis = await connectClient();
    const conn = proxy.lastConn();
    const handshake = proxy.callsOn(conn).length;
    const value = randomBytes(2 * 1024 * 1024);
    assert.equal(await redis.set('blob', value), 'OK');
    const back = await redis.getBuffer('blob');
    assert.ok(back !== null && back.equals(value), 'the value read back differs');
    assert.equal(await redis.ping(), 'PONG');
    await redis.quit();
    await proxy.closed(conn);

    const calls = proxy.callsOn(conn);
    // AUTH (+ client info) and the INFO ready check, then SET, GET, PING and QUIT: QUIT is answered (+OK).
    assert.ok(handshake >= 1, 'no handshake calls');
    assert.equal(calls.length, handshake + 4, calls.map(brief).join(' '));
    assert.ok(calls.every((c) => c.outcome === 'answered'), calls.map(brief).join(' '));
    assert.ok(calls[handshake + 1].bytesDown > 2 * 1024 * 1024, 'GET did not carry the value');
  });

  test('commandTimeout while the client keeps the connection: the late reply makes the call answered', async () => {
    const redis = await connectClient({ commandTimeout: CLIENT_TIMEOUT_MS });
    const conn = proxy.lastConn();
    proxy.slowNextRequest(SLOW_MS);
    await assert.rejects(redis.get('nothing'), /Command timed out/);
    const slowed = proxy.lastSlowedCall();
    // ioredis keeps the socket after a command timeout; nothing tells the proxy the app stopped
    // waiting, so the call ends when the held request's reply reaches the client.
    const call = await proxy.endOf(slowed);
    assert.equal(call.outcome, 'answered');
    assert.ok(wait(call) >= SLOW_MS - 20 && wait(call) < SLOW_MS + 2000, `waited ${wait(call)} ms`);
    // The connection is still usable, and the late reply did not get mixed into the next answer.
    assert.equal(await redis.ping(), 'PONG');
    redis.disconnect();
    await proxy.closed(conn);
    assert.deepEqual(outcomes(proxy.callsOn(conn)).slice(-2), ['answered', 'answered']);
  });

  test('commandTimeout then disconnect: gave-up after about the timeout', async () => {
    const redis = await connectClient({ commandTimeout: CLIENT_TIMEOUT_MS });
    const conn = proxy.lastConn();
    const handshake = proxy.callsOn(conn).length;
    proxy.slowNextRequest(SLOW_MS);
    await assert.rejects(redis.get('nothing'), /Command timed out/);
    const slowed = proxy.lastSlowedCall();
    redis.disconnect();
    const call = await proxy.endOf(slowed);
    await proxy.closed(conn);

    assert.equal(call.outcome, 'gave-up');
    assert.ok(wait(call) >= CLIENT_TIMEOUT_MS - 20 && wait(call) < SLOW_MS - 100, `waited ${wait(call)} ms`);
    assert.equal(call.delayMs, SLOW_MS);
    const calls = proxy.callsOn(conn);
    assert.equal(calls.length, handshake + 1);
    assert.ok(calls.slice(0, handshake).every((c) => c.outcome === 'answered'));
  });

  test('every call the engine started ended exactly once', () => {
    proxy.assertAllCallsEnded();
    assert.equal(proxy.engine.counters().connectionsOpen, 0);
  });
});

describe('OpenLDAP through the proxy (ldapts)', { skip: skipUnlessInstalled('ldap') }, () => {
  let server: LdapServer;
  let proxy: ProxyUnderTest;

  before(async () => {
    server = await startLdap();
    proxy = await startProxy(server);
  });
  after(async () => {
    await proxy?.engine.close();
    await server?.stop();
  });

  const url = (): string => `ldap://${proxy.address.host}:${proxy.address.port}`;
  const searchPeople = (ldap: LdapClient) =>
    ldap.search(`ou=people,${server.baseDn}`, { filter: '(objectClass=inetOrgPerson)', attributes: ['uid', 'mail'] });

  test('bind and search are answered calls; Unbind, which has no reply, is one-way', async () => {
    const ldap = new LdapClient({ url: url() });
    await ldap.bind(server.personDn, server.personPassword);
    const conn = proxy.lastConn();
    const { searchEntries } = await searchPeople(ldap);
    await ldap.unbind();
    await proxy.closed(conn);

    assert.deepEqual(searchEntries.map((e) => e.uid).sort(), LDAP_PEOPLE.map((p) => p.uid).sort());
    assert.deepEqual(searchEntries.map((e) => e.mail).sort(), LDAP_PEOPLE.map((p) => p.mail).sort());
    const calls = proxy.callsOn(conn);
    assert.deepEqual(outcomes(calls), ['answered', 'answered', 'one-way'], calls.map(brief).join(' '));
    assert.ok(wait(calls[2]) < 200, `Unbind waited ${wait(calls[2])} ms`);
  });

  test('a client timeout gives up on a slow search: gave-up after about the timeout', async () => {
    const ldap = new LdapClient({ url: url(), timeout: CLIENT_TIMEOUT_MS });
    await ldap.bind(server.personDn, server.personPassword);
    const conn = proxy.lastConn();
    proxy.slowNextRequest(SLOW_MS);
    // ldapts destroys the socket when an operation times out: the proxy sees the client leave.
    await assert.rejects(searchPeople(ldap), /timed out/);
    const call = await proxy.endOf(proxy.lastSlowedCall());
    await proxy.closed(conn);
    await ldap.unbind();

    assert.equal(call.conn, conn);
    assert.equal(call.outcome, 'gave-up');
    assert.ok(wait(call) >= CLIENT_TIMEOUT_MS - 20 && wait(call) < SLOW_MS - 100, `waited ${wait(call)} ms`);
    assert.equal(call.delayMs, SLOW_MS);
    assert.deepEqual(outcomes(proxy.callsOn(conn)), ['answered', 'gave-up']);
  });

  test('a delayed search the client waits out is answered with all entries', async () => {
    const ldap = new LdapClient({ url: url(), timeout: 10_000 });
    await ldap.bind(server.personDn, server.personPassword);
    proxy.slowNextRequest(BEARABLE_MS);
    const { searchEntries } = await searchPeople(ldap);
    const call = await proxy.endOf(proxy.lastSlowedCall());
    await ldap.unbind();

    assert.equal(searchEntries.length, LDAP_PEOPLE.length);
    assert.equal(call.outcome, 'answered');
    assert.ok(wait(call) >= BEARABLE_MS - 20 && wait(call) < 3000, `waited ${wait(call)} ms`);
    assert.equal(call.delayMs, BEARABLE_MS);
  });

  test('every call the engine started ended exactly once', async () => {
    await proxy.closed(proxy.lastConn());
    proxy.assertAllCallsEnded();
    assert.equal(proxy.engine.counters().connectionsOpen, 0);
  });
});
