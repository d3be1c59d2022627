/**
 * A discrete-event queue on virtual time: a binary min-heap ordered by (time, sequence), so
 * events at the same instant run in the order they were scheduled. Determinism depends on that.
 */
import { assert } from '../shared/assert.ts';

interface Scheduled {
  readonly time: number;
  readonly sequence: number;
  readonly run: () => void;
}

export class EventQueue {
  private heap: Scheduled[] = [];
  private sequence = 0;
  private nowValue = 0;

  get now(): number {
    return this.nowValue;
  }

  get size(): number {
    return this.heap.length;
  }

  at(time: number, run: () => void): void {
    assert(time >= this.nowValue, 'events are never scheduled in the past');
    this.push({ time, sequence: this.sequence++, run });
  }

  after(delay: number, run: () => void): void {
    this.at(this.nowValue + Math.max(0, delay), run);
  }

  /** Runs the next event; returns false when none is due at or before `until`. */
  runNext(until: number): boolean {
    const top = this.heap[0];
    if (top === undefined || top.time > until) return false;
    this.pop();
    this.nowValue = top.time;
    top.run();
    return true;
  }

  advanceTo(time: number): void {
    assert(time >= this.nowValue, 'time never goes back');
    this.nowValue = time;
  }

  private push(item: Scheduled): void {
    const heap = this.heap;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i] as Scheduled, heap[parent] as Scheduled)) break;
      [heap[i], heap[parent]] = [heap[parent] as Scheduled, heap[i] as Scheduled];
      i = parent;
    }
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && before(heap[left] as Scheduled, heap[smallest] as Scheduled)) smallest = left;
      if (right < heap.length && before(heap[right] as Scheduled, heap[smallest] as Scheduled)) smallest = right;
      if (smallest === i) return;
      [heap[i], heap[smallest]] = [heap[smallest] as Scheduled, heap[i] as Scheduled];
      i = smallest;
    }
  }
}

function before(a: Scheduled, b: Scheduled): boolean {
  return a.time < b.time || (a.time === b.time && a.sequence < b.sequence);
}
