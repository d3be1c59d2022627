// Goal: the client's pure parts behave as documented: connection strings and options, the
// mapping of server error bodies to typed errors, term-fenced leader tracking, full-jitter
// backoff bounded by the call budget, and the typed event emitter.
// Method: direct calls, no cluster and no network (endpoints are created but never used);
// the backoff's distribution is checked on a few thousand samples.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  AlreadyExistsError, BadRequestError, ChangesCompactedError, ConfigurationError, IndeterminateError, NotFoundError,
  PreconditionFailedError, ServerError, TimeoutError, TypedEmitter, UnauthorizedError, UnavailableError,
  UnderstudyClient, VersionConflictError, errorFromResponse, parseConnectionString, resolveOptions,
} from '../../src/client/index.ts';
import { BudgetedBackoff, fullJitterBackoff, fullJitterDelay } from '../../src/client/backoff.ts';
import { Endpoint } from '../../src/client/endpoint.ts';
import { Topology, type LeaderChange } from '../../src/client/topology.ts';
import type { ClusterView } from '../../src/client/types.ts';

describe('connection strings and options', () => {
  it('parses hosts, scheme and every documented parameter', () => {
    const options = parseConnectionString('understudy://host1:7001,host2:7002,10.0.0.3:7003/?token=s3cret&ack=all&consistency=session&timeoutMs=5000&attemptTimeoutMs=800&maxAttempts=4&breakerThreshold=2&breakerHalfOpenAfterMs=900&maxConcurrent=8&maxQueue=0&probeIntervalMs=0');
    assert.deepEqual(options.seeds, ['http://host1:7001', 'http://host2:7002', 'http://10.0.0.3:7003']);
    const resolved = resolveOptions(options);
    assert.equal(resolved.token, 's3cret');
    assert.equal(resolved.ack, 'all');
    assert.equal(resolved.consistency, 'session');
    assert.equal(resolved.timeoutMs, 5000);
    assert.equal(resolved.attemptTimeoutMs, 800);
    assert.equal(resolved.retry.maxAttempts, 4);
    assert.deepEqual(resolved.breaker, { failureThreshold: 2, halfOpenAfterMs: 900 });
    assert.deepEqual(resolved.bulkhead, { maxConcurrent: 8, maxQueue: 0 });
    assert.equal(resolved.probeIntervalMs, 0);
    assert.deepEqual(parseConnectionString('understudys://db.example:443').seeds, ['https://db.example:443']);
    assert.deepEqual(resolveOptions({ seeds: ['127.0.0.1:7001', 'http://127.0.0.1:7001/'] }).seeds, ['http://127.0.0.1:7001']);
    assert.equal(resolveOptions('understudy://[::1]:7001').seeds[0], 'http://[::1]:7001');
  });

  it('refuses malformed strings, unknown parameters and bad values with ConfigurationError', () => {
    for (const bad of ['http://a:1', 'understudy://', 'understudy://a:1?bogus=1', 'understudy://a:1?ack=some', 'understudy://a:1?timeoutMs=-1', 'understudy://a', 'understudy://a:1/path']) {
      assert.throws(() => resolveOptions(bad), ConfigurationError, bad);
    }
    assert.throws(() => resolveOptions({ seeds: [] }), ConfigurationError);
    assert.throws(() => new UnderstudyClient({ seeds: ['a:1'], timeoutMs: 0 }), ConfigurationError);
  });
});

describe('typed errors', () => {
  const cases: [number, Record<string, unknown>, Function, string][] = [
    [404, { code: 'NOT_FOUND', message: 'users/x does not exist', outcome: 'rejected', retryable: false }, NotFoundError, 'NOT_FOUND'],
    [412, { code: 'PRECONDITION_FAILED', message: 'expected 2', outcome: 'rejected', retryable: false, currentVersion: 4 }, VersionConflictError, 'PRECONDITION_FAILED'],
    [412, { code: 'ALREADY_EXISTS', message: 'exists', outcome: 'rejected', retryable: false, currentVersion: 1 }, AlreadyExistsError, 'ALREADY_EXISTS'],
    [400, { code: 'INVALID_ID', message: 'bad id', outcome: 'rejected', retryable: false }, BadRequestError, 'INVALID_ID'],
    [413, { code: 'BATCH_TOO_LARGE', message: 'too many', outcome: 'rejected', retryable: false }, BadRequestError, 'BATCH_TOO_LARGE'],
    [401, { code: 'UNAUTHORIZED', message: 'token', outcome: 'rejected', retryable: false }, UnauthorizedError, 'UNAUTHORIZED'],
    [410, { code: 'CHANGES_COMPACTED', message: 'gone', outcome: 'rejected', retryable: false, oldestIndex: 7 }, ChangesCompactedError, 'CHANGES_COMPACTED'],
    [503, { code: 'NO_LEADER', message: 'no leader', outcome: 'rejected', retryable: true, retryAfterMs: 200 }, UnavailableError, 'NO_LEADER'],
    [504, { code: 'SESSION_TIMEOUT', message: 'behind', outcome: 'rejected', retryable: true, appliedIndex: 3 }, TimeoutError, 'SESSION_TIMEOUT'],
    [504, { code: 'OUTCOME_UNKNOWN', message: 'lost', outcome: 'indeterminate', retryable: true }, IndeterminateError, 'OUTCOME_UNKNOWN'],
    [507, { code: 'STORAGE_ERROR', message: 'disk', outcome: 'indeterminate', retryable: false }, ServerError, 'STORAGE_ERROR'],
  ];
  for (const [status, body, type, code] of cases) {
    it(`${status} ${code} -> ${type.name}`, () => {
      const error = errorFromResponse(status, body, 'n1');
      assert.ok(error instanceof type);
      assert.equal(error.code, code);
      assert.equal(error.status, status);
      assert.equal(error.retryable, body['retryable']);
      assert.equal(error.outcome, body['outcome']);
      assert.equal(error.node, 'n1');
      assert.equal(error.message, body['message']);
    });
  }

  it('exposes the details: currentVersion, retryAfterMs, oldestIndex', () => {
    const conflict = errorFromResponse(412, { code: 'PRECONDITION_FAILED', message: 'x', currentVersion: 4 }, null);
    assert.ok(conflict instanceof PreconditionFailedError);
    assert.equal((conflict as VersionConflictError).currentVersion, 4);
    assert.equal((errorFromResponse(404, { code: 'NOT_FOUND', message: 'x', currentVersion: null }, null) as NotFoundError).details['currentVersion'], null);
    assert.equal((errorFromResponse(503, { code: 'NO_LEADER', message: 'x', retryAfterMs: 200 }, null) as UnavailableError).retryAfterMs, 200);
    assert.equal((errorFromResponse(410, { code: 'CHANGES_COMPACTED', message: 'x', oldestIndex: 9 }, null) as ChangesCompactedError).oldestIndex, 9);
  });

  it("Fastify's own 503 while a node shuts down (no catalogue code) is a retryable UnavailableError", () => {
    const error = errorFromResponse(503, { error: 'Service Unavailable', message: 'Service Unavailable', statusCode: 503 }, null);
    assert.ok(error instanceof UnavailableError);
    assert.equal(error.retryable, true);
  });
});

describe('term-fenced leader tracking', () => {
  function view(id: string, term: number, leaderId: string | null): ClusterView {
    const members = ['n1', 'n2', 'n3'].map((member, i) => ({ id: member, role: member === leaderId ? 'leader' : 'follower', voter: true, client: `http://127.0.0.1:${9001 + i}` }));
    return { id, role: id === leaderId ? 'leader' : 'follower', term, leaderId, leaderClientUrl: leaderId === null ? null : `http://127.0.0.1:${9000 + Number(leaderId.slice(1))}`, commitIndex: 0, appliedIndex: 0, members };
  }

  it('follows higher terms only, and reports each new leader once', async () => {
    const options = resolveOptions({ seeds: ['127.0.0.1:9001'] });
    const changes: LeaderChange[] = [];
    const endpoints: Endpoint[] = [];
    const topology = new Topology(options.seeds, {
      createEndpoint: (url) => {
        const endpoint = new Endpoint(url, options, { onTransportFailure: () => undefined, onAnswer: () => undefined, onBreakerState: () => undefined });
        endpoints.push(endpoint);
        return endpoint;
      },
      fetchView: async () => { throw new Error('no network in this test'); },
      onLeaderChanged: (change) => changes.push(change),
    });
    try {
      const n1 = topology.endpoint('http://127.0.0.1:9001');
      topology.observe(view('n1', 5, 'n2'), n1);
      assert.equal(topology.leaderId, 'n2');
      assert.equal(topology.leaderEndpoint()?.url, 'http://127.0.0.1:9002');
      assert.deepEqual(topology.routable().map((endpoint) => endpoint.id), ['n1', 'n2', 'n3']);
      // A stale node (lower term) naming another leader is ignored.
      topology.observe(view('n1', 4, 'n1'), n1);
      assert.equal(topology.leaderId, 'n2');
      // Same term, no leader: keeps the leader (a follower that lost contact says nothing new).
      topology.observe(view('n3', 5, null), topology.endpoint('http://127.0.0.1:9003'));
      assert.equal(topology.leaderId, 'n2');
      // A newer term with no leader yet: the old leader is deposed.
      topology.observe(view('n3', 6, null), topology.endpoint('http://127.0.0.1:9003'));
      assert.equal(topology.leaderId, null);
      assert.equal(topology.term, 6);
      // The old leader still claims term 5: ignored.
      topology.observe(view('n2', 5, 'n2'), topology.endpoint('http://127.0.0.1:9002'));
      assert.equal(topology.leaderId, null);
      topology.observe(view('n3', 6, 'n3'), topology.endpoint('http://127.0.0.1:9003'));
      assert.equal(topology.leaderId, 'n3');
      assert.deepEqual(changes, [{ leaderId: 'n2', previousLeaderId: null, term: 5 }, { leaderId: 'n3', previousLeaderId: 'n2', term: 6 }]);
      // leaderSuspect forgets the leader until a view names one again (same term is enough).
      topology.leaderSuspect(topology.endpoint('http://127.0.0.1:9003'));
      assert.equal(topology.leaderId, null);
      topology.observe(view('n1', 6, 'n3'), n1);
      assert.equal(topology.leaderId, 'n3');
      assert.equal(changes.length, 2, 'the same leader again is not a change');
      // A node that answered on a URL of its own keeps that URL, whatever a member list advertises.
      const direct = topology.endpoint('http://localhost:9102');
      topology.observe({ ...view('n2', 6, 'n3'), id: 'n2' }, direct);
      topology.observe(view('n1', 6, 'n3'), n1); // advertises n2 at 127.0.0.1:9002 again
      assert.equal(topology.find('n2')?.url, 'http://localhost:9102');
    } finally {
      await Promise.all(endpoints.map((endpoint) => endpoint.close()));
    }
  });
});

describe('backoff', () => {
  it('is full jitter: the n-th delay is uniform in [0, min(max, initial * 2^n))', () => {
    for (const retry of [0, 1, 2, 3, 6]) {
      const cap = Math.min(1000, 50 * 2 ** retry);
      const samples = Array.from({ length: 4000 }, () => fullJitterDelay(retry, 50, 1000));
      assert.ok(samples.every((delay) => delay >= 0 && delay < cap), `retry ${retry} within [0, ${cap})`);
      const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
      assert.ok(Math.abs(mean - cap / 2) < cap * 0.06, `retry ${retry}: mean ${mean.toFixed(1)} near ${cap / 2}`);
      assert.ok(samples.filter((delay) => delay < cap * 0.1).length > 200, 'small delays are common (no floor, unlike equal jitter)');
    }
  });

  it('the cockatiel backoff used for calls is full jitter and never outlasts the budget', () => {
    const deadline = performance.now() + 120;
    let backoff = new BudgetedBackoff(fullJitterBackoff(50, 1000), deadline).next(undefined);
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      delays.push(backoff.duration);
      backoff = backoff.next(undefined);
    }
    assert.ok(delays.every((delay) => delay >= 0 && delay <= 120), delays.join(','));
    const unclamped = new BudgetedBackoff(fullJitterBackoff(50, 1000), performance.now() + 60_000).next(undefined);
    assert.ok(unclamped.duration < 50);
  });
});

describe('typed emitter', () => {
  it('on / once / off, and a throwing listener does not break the emitter', () => {
    class Emitter extends TypedEmitter<{ ping: { n: number } }> {
      fire(n: number): void {
        this.emit('ping', { n });
      }
    }
    const emitter = new Emitter();
    const seen: string[] = [];
    const off = emitter.on('ping', ({ n }) => seen.push(`on${n}`));
    emitter.once('ping', ({ n }) => seen.push(`once${n}`));
    emitter.on('ping', () => { throw new Error('listener bug'); });
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => { warnings.push(warning.message); };
    process.on('warning', onWarning);
    emitter.fire(1);
    off();
    emitter.fire(2);
    assert.deepEqual(seen, ['on1', 'once1']);
    assert.equal(emitter.listenerCount('ping'), 1);
    return new Promise<void>((resolve) => setImmediate(() => {
      process.off('warning', onWarning);
      assert.ok(warnings.some((message) => message.includes('listener bug')));
      resolve();
    }));
  });
});
