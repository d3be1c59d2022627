/**
 * Peer transport over persistent TCP connections.
 *
 * Each node dials every peer once and keeps that connection for its own outgoing messages; it
 * accepts connections from peers for incoming ones. On connect the acceptor sends a random
 * challenge and the dialer answers with HMAC-SHA256(clusterSecret, challenge | clusterId | from),
 * so only nodes that hold the cluster secret can inject Raft messages. Messages queued for a peer
 * are flushed together in one frame per event-loop turn (batching), the queue is bounded (Raft
 * tolerates loss: beyond the bound the oldest messages are dropped and counted), and a broken
 * connection is redialled with capped, jittered exponential backoff.
 *
 * Not here: any interpretation of messages; ordering guarantees beyond one connection's.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { Message, NodeId } from '../consensus/types.ts';
import { FrameDecoder, NO_FRAME, encodeFrame } from './frames.ts';

export interface PeerAddress {
  readonly id: NodeId;
  readonly host: string;
  readonly port: number;
}

export interface TcpTransportOptions {
  readonly self: NodeId;
  readonly clusterId: string;
  readonly secret: string;
  readonly listenHost: string;
  readonly listenPort: number;
  readonly peers: readonly PeerAddress[];
  readonly onMessage: (message: Message) => void;
  readonly onPeerState?: (peer: NodeId, connected: boolean) => void;
  readonly queueMessagesMax?: number;
  readonly frameBytesMax?: number;
  readonly reconnectDelayMsMin?: number;
  readonly reconnectDelayMsMax?: number;
  readonly log?: (line: string) => void;
}

const HANDSHAKE_TIMEOUT_MS = 2_000;

function mac(secret: string, challenge: Buffer, clusterId: string, from: string): Buffer {
  return createHmac('sha256', secret).update(challenge).update(`|${clusterId}|${from}`).digest();
}

class PeerLink {
  socket: Socket | null = null;
  ready = false;
  queue: Message[] = [];
  flushScheduled = false;
  attempts = 0;
  timer: NodeJS.Timeout | null = null;
  dropped = 0;
  constructor(readonly address: PeerAddress) {}
}

export class TcpTransport {
  private readonly options: Required<Omit<TcpTransportOptions, 'onPeerState' | 'log'>> & TcpTransportOptions;
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly inbound = new Set<Socket>();
  private server: Server | null = null;
  private closed = false;
  private isolatedValue = false;
  /** Messages dropped in or out while isolated (the dev-only partition switch). */
  isolatedDrops = 0;
  messagesSent = 0;
  messagesReceived = 0;
  authFailures = 0;

  constructor(options: TcpTransportOptions) {
    this.options = {
      queueMessagesMax: 10_000,
      frameBytesMax: 64 * 1024 * 1024,
      reconnectDelayMsMin: 20,
      reconnectDelayMsMax: 1_000,
      ...options,
    };
    for (const peer of options.peers) {
      if (peer.id !== options.self) this.links.set(peer.id, new PeerLink(peer));
    }
  }

  get droppedMessages(): number {
    let dropped = 0;
    for (const link of this.links.values()) dropped += link.dropped;
    return dropped;
  }

  /** The port actually listened on (useful with listenPort 0). */
  get port(): number {
    const address = this.server?.address();
    return typeof address === 'object' && address !== null ? address.port : this.options.listenPort;
  }

  get isolated(): boolean {
    return this.isolatedValue;
  }

  /**
   * Development fault switch (POST /v1/dev/isolate in dev mode): while isolated, this node
   * drops its peer connections, refuses new ones and drops every Raft message to or from a peer,
   * as in a network partition around it. Healing dials the peers again at once (they redial us
   * within their reconnect backoff, at most `reconnectDelayMsMax`).
   */
  setIsolated(isolated: boolean): void {
    if (isolated === this.isolatedValue) return;
    this.isolatedValue = isolated;
    if (isolated) {
      for (const link of this.links.values()) {
        this.isolatedDrops += link.queue.length;
        link.queue = [];
        this.dropLink(link);
      }
      for (const socket of this.inbound) socket.destroy();
      this.inbound.clear();
      return;
    }
    if (this.server === null || this.closed) return;
    for (const link of this.links.values()) {
      if (link.socket === null && link.timer === null) {
        link.attempts = 0;
        this.dial(link);
      }
    }
  }

  isConnected(peer: NodeId): boolean {
    return this.links.get(peer)?.ready === true;
  }

  async start(): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.listenPort, this.options.listenHost, () => {
        server.off('error', reject);
        resolve();
      });
    });
    for (const link of this.links.values()) this.dial(link);
  }

  /** Adds or updates a peer (membership changes). */
  setPeer(address: PeerAddress): void {
    if (address.id === this.options.self) return;
    const existing = this.links.get(address.id);
    if (existing !== undefined && existing.address.host === address.host && existing.address.port === address.port) return;
    if (existing !== undefined) this.dropLink(existing);
    const link = new PeerLink(address);
    this.links.set(address.id, link);
    if (this.server !== null) this.dial(link);
  }

  send(message: Message): void {
    const link = this.links.get(message.to);
    if (link === undefined || this.closed) return;
    if (this.isolatedValue) {
      this.isolatedDrops++;
      return;
    }
    link.queue.push(message);
    if (link.queue.length > this.options.queueMessagesMax) {
      link.queue.shift();
      link.dropped++;
    }
    if (link.ready && !link.flushScheduled) {
      link.flushScheduled = true;
      setImmediate(() => this.flush(link));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const link of this.links.values()) this.dropLink(link);
    for (const socket of this.inbound) socket.destroy();
    this.inbound.clear();
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Writes every queued message now (the replica calls this after a burst of sends). */
  flushAll(): void {
    for (const link of this.links.values()) this.flush(link);
  }

  private flush(link: PeerLink): void {
    link.flushScheduled = false;
    const socket = link.socket;
    if (!link.ready || socket === null || link.queue.length === 0) return;
    const batch = link.queue;
    link.queue = [];
    this.messagesSent += batch.length;
    socket.write(encodeFrame(batch));
  }

  private dropLink(link: PeerLink): void {
    if (link.timer !== null) clearTimeout(link.timer);
    link.timer = null;
    link.socket?.destroy();
    link.socket = null;
    link.ready = false;
  }

  private dial(link: PeerLink): void {
    if (this.closed || this.isolatedValue || this.links.get(link.address.id) !== link) return;
    const socket = connect({ host: link.address.host, port: link.address.port });
    socket.setNoDelay(true);
    link.socket = socket;
    const decoder = new FrameDecoder(1024);
    let authenticated = false;
    const handshakeTimer = setTimeout(() => socket.destroy(), HANDSHAKE_TIMEOUT_MS);
    socket.on('data', (chunk: Buffer) => {
      if (authenticated) return; // the dialer never receives messages on its own connection
      let frames: unknown[];
      try {
        frames = decoder.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      const challenge = frames[0] as { challenge?: unknown } | undefined;
      if (challenge === undefined) return;
      if (!(challenge.challenge instanceof Uint8Array)) {
        socket.destroy();
        return;
      }
      const proof = mac(this.options.secret, Buffer.from(challenge.challenge), this.options.clusterId, this.options.self);
      socket.write(encodeFrame({ from: this.options.self, clusterId: this.options.clusterId, proof }));
      authenticated = true;
      clearTimeout(handshakeTimer);
      link.ready = true;
      link.attempts = 0;
      this.options.onPeerState?.(link.address.id, true);
      if (link.queue.length > 0) this.flush(link);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(handshakeTimer);
      const wasReady = link.ready;
      if (link.socket === socket) {
        link.socket = null;
        link.ready = false;
      }
      if (wasReady) this.options.onPeerState?.(link.address.id, false);
      this.scheduleRedial(link);
    });
  }

  private scheduleRedial(link: PeerLink): void {
    if (this.closed || this.links.get(link.address.id) !== link || link.timer !== null) return;
    const ceiling = Math.min(this.options.reconnectDelayMsMax, this.options.reconnectDelayMsMin * 2 ** link.attempts);
    link.attempts = Math.min(link.attempts + 1, 16);
    const delay = Math.floor(Math.random() * ceiling) + this.options.reconnectDelayMsMin; // full jitter
    link.timer = setTimeout(() => {
      link.timer = null;
      this.dial(link);
    }, delay);
  }

  private accept(socket: Socket): void {
    if (this.closed || this.isolatedValue) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    this.inbound.add(socket);
    const challenge = randomBytes(32);
    socket.write(encodeFrame({ challenge }));
    let peer: NodeId | null = null;
    const decoder = new FrameDecoder(4096);
    const handshakeTimer = setTimeout(() => socket.destroy(), HANDSHAKE_TIMEOUT_MS);
    socket.on('data', (chunk: Buffer) => {
      decoder.append(chunk);
      for (;;) {
        let frame: unknown;
        try {
          frame = decoder.next();
        } catch (error) {
          this.options.log?.(`peer connection dropped: ${(error as Error).message}`);
          socket.destroy();
          return;
        }
        if (frame === NO_FRAME) return;
        if (peer === null) {
          peer = this.verifyHello(frame, challenge);
          if (peer === null) {
            this.authFailures++;
            this.options.log?.(`peer authentication failed from ${socket.remoteAddress ?? '?'}`);
            socket.destroy();
            return;
          }
          clearTimeout(handshakeTimer);
          decoder.frameBytesMax = this.options.frameBytesMax; // only after authentication
          continue;
        }
        if (!Array.isArray(frame)) {
          socket.destroy();
          return;
        }
        for (const message of frame as Message[]) {
          if (message?.from !== peer || message.to !== this.options.self) continue;
          if (this.isolatedValue) {
            this.isolatedDrops++;
            continue;
          }
          this.messagesReceived++;
          this.options.onMessage(message);
        }
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(handshakeTimer);
      this.inbound.delete(socket);
    });
  }

  private verifyHello(frame: unknown, challenge: Buffer): NodeId | null {
    const hello = frame as { from?: unknown; clusterId?: unknown; proof?: unknown };
    if (typeof hello?.from !== 'string' || hello.clusterId !== this.options.clusterId) return null;
    if (!(hello.proof instanceof Uint8Array)) return null;
    const expected = mac(this.options.secret, challenge, this.options.clusterId, hello.from);
    const proof = Buffer.from(hello.proof);
    if (proof.length !== expected.length || !timingSafeEqual(proof, expected)) return null;
    return hello.from;
  }
}
