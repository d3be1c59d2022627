/**
 * Replay of WAL segments (wal_format.ts) into the state they describe: hard state, current
 * snapshot metadata and the log entries. Pure: it is given the bytes, touches no files, and says
 * what it found (a torn tail, a segment to discard); the caller decides what to do on disk.
 *
 * Not responsible for: reading or repairing files, the staged snapshot or the snapshot file
 * (segment_log_storage.ts).
 *
 * Rules:
 * - Segments are replayed in sequence order. Each starts with a CHECKPOINT: the first one replayed
 *   sets the state; every later one must equal the state replayed so far (a cheap cross-check
 *   that nothing between them was lost), else StorageCorruptionError.
 * - ENTRY at index i drops every entry >= i, then appends. An ENTRY past last + 1 (possible only
 *   at the start, where whole segments were deleted) restarts the log at i; the final coverage
 *   check below catches a hole that matters.
 * - SNAPSHOT makes its metadata current and drops what its action says (wal_format.ts).
 * - Records take effect a whole write at a time: they are held until the record carrying the
 *   end-of-write mark (wal_format.ts), then applied together.
 * - An invalid record, or records at the end of a segment without their end-of-write mark, end the
 *   replay of the segment at the end of its last complete write. With `tolerateTornTail`, in the
 *   LAST segment that is a write torn by a crash, never acknowledged: reported (`tornTail`), and
 *   everything from there on is ignored; if not even the segment's first write (its checkpoint and
 *   the Ready after it) is complete — a rotation the crash interrupted — the whole segment is
 *   reported as `abandoned` and not replayed. Anywhere else it is StorageCorruptionError.
 * - At the end the log must cover (snapshot index, last index] without a hole.
 */
import type { Entry, HardState, SnapshotMeta } from '../../consensus/types.ts';
import { StorageCorruptionError } from '../errors.ts';
import { LogWindow } from './log_window.ts';
import {
  RecordType, SnapshotAction, decodeCheckpointRecord, decodeEntryRecord, decodeHardStateRecord, decodeSnapshotRecord,
  describeRecord, endOfWriteFlag, recordTypeMask, scanRecords, type Checkpoint,
} from './wal_format.ts';

export interface SegmentSource {
  readonly sequence: number;
  readonly file: string;
  /**
   * The bytes to replay: the whole file at recovery, the durable prefix when re-reading live.
   * Called once, when replay reaches the segment, so only one segment's bytes are held at a time.
   */
  readonly read: () => Buffer;
}

export interface ReplayedSegment {
  readonly sequence: number;
  readonly file: string;
  /** Bytes of valid records (the file is cut here if it had a torn tail). */
  readonly validBytes: number;
  /** The highest index of any ENTRY record in the segment; 0 if it has none. */
  readonly maxEntryIndex: number;
}

export interface TornTail {
  readonly file: string;
  readonly offset: number;
  /** Bytes from `offset` to the end of the file, all dropped. */
  readonly bytes: number;
  readonly reason: string;
}

export interface ReplayResult {
  readonly hardState: HardState;
  readonly snapshot: SnapshotMeta;
  readonly entries: LogWindow<Entry>;
  /** The replayed segments, in order; the last is the one to append to. */
  readonly segments: readonly ReplayedSegment[];
  readonly tornTail: TornTail | null;
  /** The last segment's file when it had no valid checkpoint and was left out. */
  readonly abandoned: { readonly file: string; readonly bytes: number; readonly reason: string } | null;
}

function sameCheckpoint(a: Checkpoint, b: Checkpoint): boolean {
  return a.hardState.term === b.hardState.term && a.hardState.vote === b.hardState.vote && a.hardState.commit === b.hardState.commit
    && a.snapshot.index === b.snapshot.index && a.snapshot.term === b.snapshot.term;
}

function describeCheckpoint(c: Checkpoint): string {
  return `term ${c.hardState.term} vote ${String(c.hardState.vote)} commit ${c.hardState.commit}, snapshot ${c.snapshot.index}/${c.snapshot.term}`;
}

/** Replays `sources` (at least one) in order; see the header for the rules. */
export function replaySegments(sources: readonly SegmentSource[], tolerateTornTail: boolean): ReplayResult {
  let hardState: HardState | null = null;
  let snapshot: SnapshotMeta | null = null;
  const entries = new LogWindow<Entry>();
  const segments: ReplayedSegment[] = [];
  let tornTail: TornTail | null = null;
  let abandoned: ReplayResult['abandoned'] = null;

  sources.forEach((source, position) => {
    const { file } = source;
    const data = source.read();
    const isLast = position === sources.length - 1;
    let maxEntryIndex = 0;

    const apply = (typeByte: number, payload: Buffer, offset: number, ordinal: number): void => {
      const type = typeByte & recordTypeMask;
      const what = describeRecord(ordinal, type, offset);
      if (ordinal === 1) {
        if (type !== RecordType.checkpoint) throw new StorageCorruptionError(file, `${what}: a segment must start with a checkpoint`);
        const checkpoint = decodeCheckpointRecord(file, what, payload);
        if (hardState === null || snapshot === null) {
          hardState = checkpoint.hardState;
          snapshot = checkpoint.snapshot;
        } else if (!sameCheckpoint(checkpoint, { hardState, snapshot })) {
          throw new StorageCorruptionError(file, `${what} (${describeCheckpoint(checkpoint)}) disagrees with the state replayed from the segments before it (${describeCheckpoint({ hardState, snapshot })})`);
        }
        return;
      }
      switch (type) {
        case RecordType.entry: {
          const entry = decodeEntryRecord(file, what, payload);
          entries.put(entry.index, entry);
          if (entry.index > maxEntryIndex) maxEntryIndex = entry.index;
          return;
        }
        case RecordType.hardState:
          hardState = decodeHardStateRecord(file, what, payload);
          return;
        case RecordType.snapshot: {
          const record = decodeSnapshotRecord(file, what, payload);
          snapshot = record.meta;
          if (record.action === SnapshotAction.installDrop) entries.clear();
          else entries.dropThrough(record.cutoff);
          return;
        }
        case RecordType.checkpoint:
          throw new StorageCorruptionError(file, `${what}: a checkpoint may only start a segment`);
        default:
          throw new StorageCorruptionError(file, `${what}: unknown record type`);
      }
    };

    // Records of the write being read, applied when its end-of-write record arrives.
    let pending: Array<{ type: number; payload: Buffer; offset: number; ordinal: number }> = [];
    let committedBytes = 0;
    let committedWrites = 0;
    const result = scanRecords(data, (type, payload, offset, ordinal, next) => {
      pending.push({ type, payload, offset, ordinal });
      if ((type & endOfWriteFlag) === 0) return;
      for (const record of pending) apply(record.type, record.payload, record.offset, record.ordinal);
      pending = [];
      committedBytes = next;
      committedWrites += 1;
    });

    const invalid = result.invalid;
    if (invalid !== null || pending.length > 0) {
      const reason = invalid !== null
        ? `record ${invalid.ordinal} at byte ${invalid.offset} is invalid: ${invalid.reason}`
        : `the last write is incomplete: ${pending.length} record(s) from byte ${committedBytes} on lack its end-of-write mark`;
      const canBeTorn = isLast && tolerateTornTail;
      if (!canBeTorn) {
        throw new StorageCorruptionError(file, `${reason}${tolerateTornTail ? ' (only the last segment may end in a torn write)' : ''}`);
      }
      if (committedWrites === 0) {
        // Not even the first write: an interrupted rotation if this is the last of several segments.
        if (position === 0) throw new StorageCorruptionError(file, `segment has no complete first write: ${reason}`);
        abandoned = { file, bytes: data.byteLength, reason };
        return;
      }
      tornTail = { file, offset: committedBytes, bytes: data.byteLength - committedBytes, reason };
    } else if (committedWrites === 0) {
      if (isLast && tolerateTornTail && position > 0) {
        abandoned = { file, bytes: 0, reason: 'the segment is empty' };
        return;
      }
      throw new StorageCorruptionError(file, 'segment is empty: it has no checkpoint');
    }
    segments.push({ sequence: source.sequence, file, validBytes: committedBytes, maxEntryIndex });
  });

  const finalHardState = hardState as HardState | null;
  const finalSnapshot = snapshot as SnapshotMeta | null;
  const first = segments[0];
  if (finalHardState === null || finalSnapshot === null || first === undefined) {
    throw new StorageCorruptionError(sources[0]?.file ?? '(no segment)', 'no segment holds a valid checkpoint');
  }
  if (entries.size > 0 && entries.first > finalSnapshot.index + 1) {
    throw new StorageCorruptionError(first.file, `log has a hole: the snapshot ends at index ${finalSnapshot.index}, the first entry is ${entries.first}`);
  }
  return { hardState: finalHardState, snapshot: finalSnapshot, entries, segments, tornTail, abandoned };
}
