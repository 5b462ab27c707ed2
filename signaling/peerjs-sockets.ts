/**
 * The PeerJS signaling sockets of admitted pages: one per peer id (a page re-registering after a drop
 * replaces its old socket), a cap per client address, and `close(peerId)` for when the page leaves or
 * times out, so that a departed page's registration never outlives it.
 */
import type { WebSocket } from 'ws';

export class PeerJsSockets {
  private readonly byId = new Map<string, { ws: WebSocket; address: string }>();
  private readonly perAddress = new Map<string, number>();

  constructor(private readonly maxPerAddress: number) {}

  /** Whether `address` may open one more PeerJS socket (a replacement of `peerId`'s own does not count). */
  admits(address: string, peerId: string): boolean {
    const replacing = this.byId.get(peerId)?.address === address ? 1 : 0;
    return (this.perAddress.get(address) ?? 0) - replacing < this.maxPerAddress;
  }

  /**
   * Cuts peerId's current socket, if any, and resolves once it is closed: PeerJS then forgets the old
   * registration, so the new socket registers afresh (PeerJS sends OPEN only to a new registration).
   */
  async replace(peerId: string): Promise<void> {
    const old = this.byId.get(peerId);
    if (!old) return;
    this.byId.delete(peerId);
    if (old.ws.readyState === old.ws.CLOSED) return;
    const closed = new Promise<void>((resolve) => old.ws.once('close', () => resolve()));
    old.ws.terminate();
    await closed;
  }

  /** Track `ws` as peerId's socket (call `replace` first). */
  add(peerId: string, ws: WebSocket, address: string): void {
    this.byId.set(peerId, { ws, address });
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    ws.on('close', () => {
      this.perAddress.set(address, (this.perAddress.get(address) ?? 1) - 1);
      if ((this.perAddress.get(address) ?? 0) <= 0) this.perAddress.delete(address);
      if (this.byId.get(peerId)?.ws === ws) this.byId.delete(peerId);
    });
  }

  /** The page left or timed out: end its registration. */
  close(peerId: string): void {
    const entry = this.byId.get(peerId);
    if (!entry) return;
    this.byId.delete(peerId);
    entry.ws.close(4000, 'the page left the session');
    // a socket that does not finish its close handshake is cut
    setTimeout(() => entry.ws.terminate(), 2000).unref();
  }

  has(peerId: string): boolean {
    return this.byId.has(peerId);
  }

  get size(): number {
    return this.byId.size;
  }

  closeAll(): void {
    for (const { ws } of this.byId.values()) ws.terminate();
    this.byId.clear();
  }
}
