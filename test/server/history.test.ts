// Goal: the dashboard's in-memory history stays bounded and correct: the per-second stats ring
// holds at most `capacity` samples, one per second (quiet seconds included, gaps bounded), with
// the requests counted in the second they were answered and percentiles from the histograms;
// the event journal keeps the newest `capacity` events with increasing sequence numbers.
// Method: StatsHistory and EventJournal with a hand-driven wall clock.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventJournal, StatsHistory, bucketUpperMs, histogramQuantile, latencyBucket, type NodeGauges } from '../../src/server/history.ts';

describe('StatsHistory', () => {
  it('keeps one sample per second, at most `capacity`, oldest dropped first', () => {
    let now = 1_000_000;
    const gauges: NodeGauges = { role: 'leader', term: 3, commitIndex: 10, appliedIndex: 10, lag: { n2: { entries: 4, ms: 12 } } };
    const history = new StatsHistory(() => gauges, () => now, 5);
    for (let second = 0; second < 20; second++) {
      history.record('write', true, 2);
      now += 1000;
      history.tick();
    }
    const samples = history.since(0);
    assert.equal(samples.length, 5);
    assert.equal(history.size, 5);
    assert.deepEqual(samples.map((s) => s.t), [15, 16, 17, 18, 19].map((i) => 1_000_000 + i * 1000));
    for (const sample of samples) {
      assert.equal(sample.writes, 1);
      assert.equal(sample.role, 'leader');
      assert.deepEqual(sample.lag, { n2: { entries: 4, ms: 12 } });
    }
  });

  it('counts each request in its own second, with errors apart and percentiles per second', () => {
    let now = 5_000_500;
    const history = new StatsHistory(() => null, () => now, 300);
    for (let i = 1; i <= 100; i++) history.record('write', true, i); // 1..100 ms
    history.record('write', false, 3);
    history.record('read', true, 0.5);
    history.record('read', false, 1);
    now += 1000;
    history.record('read', true, 7);
    assert.equal(history.since(0).length, 1, 'the open second is not reported');
    now += 1000;
    const [first, second] = history.since(0);
    assert.ok(first !== undefined && second !== undefined);
    assert.equal(first.t, 5_000_000);
    assert.deepEqual([first.writes, first.writeErrors, first.reads, first.readErrors], [100, 1, 1, 1]);
    // Log buckets are 10% wide: the percentiles are within 10% of the exact ones, never above the max.
    assert.ok(first.writeP50Ms !== null && first.writeP50Ms >= 50 && first.writeP50Ms <= 55, String(first.writeP50Ms));
    assert.ok(first.writeP99Ms !== null && first.writeP99Ms >= 99 && first.writeP99Ms <= 100, String(first.writeP99Ms));
    assert.equal(first.role, null);
    assert.deepEqual([second.writes, second.reads], [0, 1]);
    assert.ok(second.readP99Ms !== null && second.readP99Ms >= 7 && second.readP99Ms <= 7.7);
    assert.equal(second.writeP50Ms, null);
    assert.deepEqual(history.since(first.t).map((s) => s.t), [second.t]);
  });

  it('fills quiet seconds with empty samples, and a long stall with at most a ring of them', () => {
    let now = 0;
    const history = new StatsHistory(() => null, () => now, 10);
    history.record('write', true, 1);
    now = 3_500;
    history.tick();
    assert.deepEqual(history.since(-1).map((s) => [s.t, s.writes]), [[0, 1], [1000, 0], [2000, 0]]);
    now = 10_000_000; // the process slept for hours
    history.tick();
    assert.equal(history.size, 10);
    assert.equal(history.since(-1).at(-1)?.t, 9_999_000);
  });

  it('a wall clock that steps back keeps counting into the open second', () => {
    let now = 10_000;
    const history = new StatsHistory(() => null, () => now, 10);
    history.record('read', true, 1);
    now = 8_000;
    history.record('read', true, 1);
    now = 11_000;
    assert.deepEqual(history.since(0).map((s) => [s.t, s.reads]), [[10_000, 2]]);
  });

  it('latency buckets are monotonic and quantiles read their upper bound', () => {
    let last = -1;
    for (const ms of [0, 0.005, 0.02, 0.5, 1, 1.05, 10, 100, 1e4, 1e9]) {
      const bucket = latencyBucket(ms);
      assert.ok(bucket >= last);
      if (ms > 0.01) assert.ok(bucketUpperMs(bucket) >= ms && bucketUpperMs(bucket) < ms * 1.1 + 1e-9 || bucket === 200, `${ms}`);
      last = bucket;
    }
    assert.equal(histogramQuantile({}, 0.5), null);
    assert.equal(histogramQuantile({ [latencyBucket(4)]: 3 }, 0.99, 3.9), 3.9);
  });
});

describe('EventJournal', () => {
  it('keeps the newest `capacity` events with increasing sequence numbers and wall-clock times', () => {
    let now = 42;
    const journal = new EventJournal(() => 'n7', () => now, 3);
    for (let term = 1; term <= 10; term++) {
      journal.add({ type: 'role', role: 'candidate', term });
      now++;
    }
    assert.equal(journal.lastSeq, 10);
    assert.equal(journal.oldestSeq, 8);
    const events = journal.after(0, 100);
    assert.deepEqual(events.map((e) => e.seq), [8, 9, 10]);
    assert.deepEqual(events.map((e) => e.atMs), [49, 50, 51]);
    assert.ok(events.every((e) => e.node === 'n7'));
    assert.deepEqual(journal.after(8, 1).map((e) => e.seq), [9]);
    assert.deepEqual(journal.after(10, 100), []);
    assert.match(journal.bootId, /^[0-9a-f-]{36}$/);
  });
});
