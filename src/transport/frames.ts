/**
 * Length-prefixed binary frames on a byte stream: a 4-byte big-endian length, then a msgpackr
 * payload. The decoder is incremental (TCP delivers arbitrary slices) and refuses frames larger
 * than its limit, so a confused or hostile peer cannot make us buffer without bound.
 */
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, moreTypes: false });

export class FrameTooLargeError extends Error {
  override readonly name = 'FrameTooLargeError';
}

export function encodeFrame(value: unknown): Buffer {
  const payload = packr.pack(value);
  const frame = Buffer.allocUnsafe(4 + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  payload.copy(frame, 4);
  return frame;
}

export class FrameDecoder {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;

  /** The limit may be raised between frames (e.g. once a peer has authenticated). */
  constructor(public frameBytesMax: number) {}

  /** Feeds bytes; returns every complete frame's decoded value. Throws on an oversized frame. */
  push(chunk: Buffer): unknown[] {
    this.append(chunk);
    const out: unknown[] = [];
    for (let frame = this.next(); frame !== NO_FRAME; frame = this.next()) out.push(frame);
    return out;
  }

  append(chunk: Buffer): void {
    this.buffered.push(chunk);
    this.bufferedBytes += chunk.length;
  }

  /** The next complete frame, or NO_FRAME. Throws on an oversized frame. */
  next(): unknown {
    if (this.bufferedBytes < 4) return NO_FRAME;
    const length = this.peek(4).readUInt32BE(0);
    if (length > this.frameBytesMax) throw new FrameTooLargeError(`frame of ${length} bytes exceeds ${this.frameBytesMax}`);
    if (this.bufferedBytes < 4 + length) return NO_FRAME;
    const frame = this.take(4 + length);
    return packr.unpack(frame.subarray(4));
  }

  private peek(bytes: number): Buffer {
    if ((this.buffered[0]?.length ?? 0) >= bytes) return this.buffered[0] as Buffer;
    const joined = Buffer.concat(this.buffered);
    this.buffered = [joined];
    return joined;
  }

  private take(bytes: number): Buffer {
    const joined = this.buffered.length === 1 ? (this.buffered[0] as Buffer) : Buffer.concat(this.buffered);
    const frame = joined.subarray(0, bytes);
    const rest = joined.subarray(bytes);
    this.buffered = rest.length > 0 ? [rest] : [];
    this.bufferedBytes = rest.length;
    return frame;
  }
}

export const NO_FRAME: unique symbol = Symbol('no frame');
