/**
 * Fault-injecting TCP proxies for peer links, so network partitions need no root.
 *
 * The peer transport opens one outbound connection per ordered pair: node j dials node i and uses
 * that connection only for j→i messages (the reverse direction of the socket carries only the
 * handshake challenge). The chaos cluster gives node j a config whose `members[i].peer` is the
 * address of a LinkProxy for (j→i) that forwards to i's real peer port. Cutting that proxy cuts
 * j→i and nothing else.
 *
 * Modes of a cut link:
 * - `refuse`: existing connections are destroyed (the dialer sees a reset/close at once) and new
 *   ones are accepted and closed immediately (the dialer sees the link bounce).
 * - `blackhole`: connections stay open, but every byte in either direction is discarded, so the
 *   dialer believes the link is up while nothing arrives (like a firewall DROP rule). When the
 *   link heals, connections that lost bytes are destroyed, since a frame may have been cut in the
 *   middle; the transport redials.
 *
 * Not here: which links to cut (faults.ts), process control (cluster.ts).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export type CutMode = 'refuse' | 'blackhole';

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  /** True once a byte was discarded on this pair: it cannot be healed, only replaced. */
  damaged: boolean;
}

export class LinkProxy {
  readonly from: string;
  readonly to: string;
  private readonly targetHost: string;
  private readonly targetPort: number;
  private server: Server | null = null;
  private readonly pairs = new Set<Pair>();
  private cut: CutMode | null = null;
  private listenPort = 0;
  /** Counters for tests and reports. */
  connectionsAccepted = 0;
  connectionsRefused = 0;
  bytesForwarded = 0;
  bytesDiscarded = 0;

  constructor(options: { from: string; to: string; targetHost: string; targetPort: number }) {
    this.from = options.from;
    this.to = options.to;
    this.targetHost = options.targetHost;
    this.targetPort = options.targetPort;
  }

  get port(): number {
    return this.listenPort;
  }

  get address(): string {
    return `127.0.0.1:${this.listenPort}`;
  }

  get mode(): CutMode | null {
    return this.cut;
  }

  get openConnections(): number {
    return this.pairs.size;
  }

  /** Listens on 127.0.0.1 (port 0: any free port). */
  async start(port = 0): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (typeof address !== 'object' || address === null) throw new Error('proxy has no address');
    this.listenPort = address.port;
  }

  /** Cuts the link (from→to only). Idempotent; a second call may change the mode. */
  setCut(mode: CutMode): void {
    this.cut = mode;
    if (mode === 'refuse') {
      for (const pair of [...this.pairs]) this.destroy(pair);
    }
  }

  /** Restores the link. Connections that lost bytes are closed so the dialer starts afresh. */
  heal(): void {
    this.cut = null;
    for (const pair of [...this.pairs]) {
      if (pair.damaged) this.destroy(pair);
    }
  }

  async close(): Promise<void> {
    this.cut = 'refuse';
    for (const pair of [...this.pairs]) this.destroy(pair);
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.cut === 'refuse' || this.server === null) {
      this.connectionsRefused++;
      client.destroy();
      return;
    }
    this.connectionsAccepted++;
    client.setNoDelay(true);
    client.pause();
    const upstream = connect({ host: this.targetHost, port: this.targetPort });
    upstream.setNoDelay(true);
    const pair: Pair = { client, upstream, damaged: false };
    this.pairs.add(pair);
    const relay = (source: Socket, sink: Socket): void => {
      source.on('data', (chunk: Buffer) => {
        if (this.cut !== null) {
          pair.damaged = true;
          this.bytesDiscarded += chunk.length;
          return;
        }
        if (pair.damaged) {
          // Healed but not yet replaced: never forward the rest of a cut stream.
          this.bytesDiscarded += chunk.length;
          return;
        }
        this.bytesForwarded += chunk.length;
        // Backpressure: a stalled receiver (a paused process) must not make us buffer forever.
        if (!sink.write(chunk) && !source.isPaused()) {
          source.pause();
          sink.once('drain', () => source.resume());
        }
      });
    };
    relay(client, upstream);
    relay(upstream, client);
    upstream.once('connect', () => client.resume());
    const end = (): void => this.destroy(pair);
    for (const socket of [client, upstream]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  }

  private destroy(pair: Pair): void {
    if (!this.pairs.delete(pair)) return;
    pair.client.destroy();
    pair.upstream.destroy();
  }
}

/**
 * Which traffic a proxy carries: `raft` is the peer transport (j dials i for j→i messages); `http`
 * is node-to-node client API traffic (j forwarding a write to leader i, or asking i for its view
 * of the cluster), where j opens the connection to i.
 */
export type LinkKind = 'raft' | 'http';

/** One LinkProxy per ordered pair (from, to) of distinct nodes and per kind of traffic. */
export class ProxyMesh {
  private readonly links = new Map<string, LinkProxy>();

  private static key(kind: LinkKind, from: string, to: string): string {
    return `${kind}:${from}->${to}`;
  }

  /**
   * Creates and starts proxies for every ordered pair; `targetPortOf(kind, id)` is the real port
   * (peer port for raft, client port for http) of node id.
   */
  static async start(ids: readonly string[], targetPortOf: (kind: LinkKind, id: string) => number, kinds: readonly LinkKind[] = ['raft', 'http']): Promise<ProxyMesh> {
    const mesh = new ProxyMesh();
    try {
      for (const kind of kinds) {
        for (const from of ids) {
          for (const to of ids) {
            if (from === to) continue;
            const proxy = new LinkProxy({ from, to, targetHost: '127.0.0.1', targetPort: targetPortOf(kind, to) });
            mesh.links.set(ProxyMesh.key(kind, from, to), proxy);
            await proxy.start();
          }
        }
      }
    } catch (error) {
      await mesh.close();
      throw error;
    }
    return mesh;
  }

  link(kind: LinkKind, from: string, to: string): LinkProxy {
    const proxy = this.links.get(ProxyMesh.key(kind, from, to));
    if (proxy === undefined) throw new Error(`no ${kind} proxy ${from}->${to}`);
    return proxy;
  }

  has(kind: LinkKind, from: string, to: string): boolean {
    return this.links.has(ProxyMesh.key(kind, from, to));
  }

  all(): LinkProxy[] {
    return [...this.links.values()];
  }

  /** Cuts from→to (one direction only): the raft link, and the http link on which `from` is the client. */
  cut(from: string, to: string, mode: CutMode): void {
    for (const kind of ['raft', 'http'] as const) {
      if (this.has(kind, from, to)) this.link(kind, from, to).setCut(mode);
    }
  }

  /** Cuts both directions between every node of `a` and every node of `b`. */
  partition(a: readonly string[], b: readonly string[], mode: CutMode): void {
    for (const x of a) {
      for (const y of b) {
        if (x === y) continue;
        this.cut(x, y, mode);
        this.cut(y, x, mode);
      }
    }
  }

  /** The directed raft links currently cut, as "from->to". */
  cutLinks(): string[] {
    const out: string[] = [];
    for (const [key, proxy] of this.links) {
      if (key.startsWith('raft:') && proxy.mode !== null) out.push(`${proxy.from}->${proxy.to}`);
    }
    return out;
  }

  healAll(): void {
    for (const proxy of this.links.values()) proxy.heal();
  }

  async close(): Promise<void> {
    await Promise.all([...this.links.values()].map((proxy) => proxy.close()));
  }
}
