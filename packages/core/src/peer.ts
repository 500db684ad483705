/**
 * Bytes prepared once for one transport and written unchanged to every peer of it
 * ("frame once, write many"). A WebSocket transport keeps the payload, an SSE transport
 * the complete `event:/id:/data:` block.
 */
export interface PreparedFrame {
  /** The payload as the transport writes it. */
  readonly data: string | Uint8Array
  /** Whether the data goes out as a binary WebSocket message. */
  readonly binary?: boolean
  /** A volatile frame may be dropped for a slow peer instead of closing it. */
  readonly volatile?: boolean
}

/** The transports a Peer can speak. */
export type Transport = 'ws' | 'sse'

/** One live connection (a WebSocket or an SSE stream), as the hub sees it. */
export interface Peer {
  readonly id: string
  readonly transport: Transport
  /** What authentication put in `c.var.user` when the connection started. */
  readonly user: unknown
  readonly topics: ReadonlySet<string>
  /** Bytes queued for this peer and not yet handed to the kernel. */
  readonly bufferedAmount: number
  /** Writes the frame; false when it was dropped or the peer is closed. */
  send(frame: PreparedFrame): boolean
  close(code?: number, reason?: string): void
}
