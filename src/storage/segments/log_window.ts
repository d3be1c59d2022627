/**
 * LogWindow: a contiguous run of log indexes [first, last] with one value per index, supporting
 * exactly the edits a Raft log sees: append (which first drops everything at and after the
 * appended index), drop a prefix (compaction, snapshot install) and clear. Replay keeps the
 * decoded entries in one; the live storage keeps only the terms (numbers) in another.
 *
 * Not responsible for: deciding whether an edit is legal (callers assert contiguity).
 *
 * Invariant: values are stored in one array from `head` on; dropping a prefix moves `head` and the
 * array is compacted once the dead prefix outgrows the live part, so every edit is amortised O(1).
 */
import type { LogIndex } from '../../consensus/types.ts';

export class LogWindow<T> {
  private items: T[] = [];
  private head = 0;
  private firstIndex: LogIndex = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  /** The first index held; meaningless when size is 0. */
  get first(): LogIndex {
    return this.firstIndex;
  }

  /** The last index held; first - 1 when size is 0. */
  get last(): LogIndex {
    return this.firstIndex + this.size - 1;
  }

  at(index: LogIndex): T | undefined {
    if (index < this.firstIndex || index > this.last) return undefined;
    return this.items[this.head + index - this.firstIndex];
  }

  /**
   * Puts `value` at `index` after dropping everything at and after it. An index below the window
   * or past last + 1 (a gap) restarts the window at `index`; callers that must not leave gaps
   * assert before calling.
   */
  put(index: LogIndex, value: T): void {
    const size = this.size;
    if (size === 0 || index < this.firstIndex || index > this.firstIndex + size) {
      this.items = [value];
      this.head = 0;
      this.firstIndex = index;
      return;
    }
    this.items.length = this.head + (index - this.firstIndex);
    this.items.push(value);
  }

  /** Drops every index >= `index`. */
  truncateFrom(index: LogIndex): void {
    if (this.size === 0 || index > this.last) return;
    if (index <= this.firstIndex) {
      this.clear();
      return;
    }
    this.items.length = this.head + (index - this.firstIndex);
  }

  /** Drops every index <= `index`. */
  dropThrough(index: LogIndex): void {
    if (this.size === 0 || index < this.firstIndex) return;
    if (index >= this.last) {
      this.clear();
      return;
    }
    const drop = index - this.firstIndex + 1;
    this.head += drop;
    this.firstIndex += drop;
    if (this.head > 1024 && this.head > this.size) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  clear(): void {
    this.items = [];
    this.head = 0;
    this.firstIndex = 0;
  }

  toArray(): T[] {
    return this.items.slice(this.head);
  }
}
