// The transport conformance suite: the Peer behaviour every Flumen transport (WebSocket, SSE)
// must show, run against a real server. A transport provides a harness; the suite does the rest.
import type { ConnectionLimitOptions, Peer, Transport } from '@flumen/core'
import { prepareBatch, prepareFrame } from '@flumen/core'
import { afterEach, describe, expect, it } from 'vitest'

/** A client connection as the suite sees it. */
export interface ConformanceClient {
  /** The next text payload the client received (rejects after `timeoutMs`). */
  next(timeoutMs?: number): Promise<string>
  /** Resolves when the connection is closed or ended, from either side. */
  readonly closed: Promise<void>
  /** Closes or aborts the connection from the client side. */
  close(): void
}

export interface ConformanceServer {
  connect(): Promise<ConformanceClient>
  /** Opens a connection: the client when it opened, else the HTTP status it was refused with. */
  attempt(): Promise<ConformanceClient | number>
  close(timeoutMs: number): Promise<void>
}

export interface ConformanceHooks {
  /** The value middleware puts in `c.var.user` for every connection. */
  user: unknown
  /** Connection limits for the route under test. */
  limits: ConnectionLimitOptions
  onPeer(peer: Peer): void
  onPeerClosed(peer: Peer): void
}

export interface TransportHarness {
  transport: Transport
  /** Starts a real server on port 0 whose route reports each connection's Peer to `hooks`. */
  start(hooks: ConformanceHooks): Promise<ConformanceServer>
}

const waitFor = async (check: () => boolean, timeoutMs = 5_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** Registers the suite with Vitest for one transport. */
export const describeTransportConformance = (harness: TransportHarness): void => {
  describe(`transport conformance: ${harness.transport}`, () => {
    let server: ConformanceServer | undefined
    const clients: ConformanceClient[] = []
    const peers: Peer[] = []
    const closedPeers: Peer[] = []
    const user = { id: 'u1', name: 'alice' }

    const start = async (limits: ConnectionLimitOptions = {}): Promise<ConformanceServer> => {
      server = await harness.start({
        user,
        limits,
        onPeer: (peer) => peers.push(peer),
        onPeerClosed: (peer) => closedPeers.push(peer),
      })
      return server
    }
    const connect = async (): Promise<ConformanceClient> => {
      const client = await server!.connect()
      clients.push(client)
      return client
    }

    afterEach(async () => {
      for (const client of clients.splice(0)) client.close()
      await server?.close(200)
      server = undefined
      peers.length = 0
      closedPeers.length = 0
    })

    it('makes one Peer per connection with a unique id, its transport and the user', async () => {
      await start()
      await connect()
      await connect()
      await waitFor(() => peers.length === 2)
      expect(peers[0]!.id).not.toBe(peers[1]!.id)
      for (const peer of peers) {
        expect(peer.transport).toBe(harness.transport)
        expect(peer.user).toEqual(user)
        expect(peer.bufferedAmount).toBeGreaterThanOrEqual(0)
      }
    })

    it('delivers one prepared frame to many peers, in order, byte for byte', async () => {
      await start()
      const connected = await Promise.all([connect(), connect(), connect()])
      await waitFor(() => peers.length === 3)
      const frames = ['{"n":1}', '{"n":2,"text":"grüße 👋"}', '{"n":3}'].map((data) => prepareFrame(data))
      for (const frame of frames) for (const peer of peers) expect(peer.send(frame)).toBe(true)
      for (const client of connected) {
        expect(await client.next()).toBe('{"n":1}')
        expect(await client.next()).toBe('{"n":2,"text":"grüße 👋"}')
        expect(await client.next()).toBe('{"n":3}')
      }
    })

    it('delivers a batch as separate messages, in order', async () => {
      await start()
      const connected = await Promise.all([connect(), connect()])
      await waitFor(() => peers.length === 2)
      const batch = prepareBatch(['{"b":1}', '{"b":2}', '{"b":3}'].map((data) => prepareFrame(data)))
      for (const peer of peers) expect(peer.send(batch)).toBe(true)
      for (const client of connected) {
        expect([await client.next(), await client.next(), await client.next()]).toEqual([
          '{"b":1}',
          '{"b":2}',
          '{"b":3}',
        ])
      }
    })

    it('peer.close() ends the client and reports the peer closed once', async () => {
      await start()
      const client = await connect()
      await waitFor(() => peers.length === 1)
      peers[0]!.close(1000, 'bye')
      await client.closed
      await waitFor(() => closedPeers.length === 1)
      expect(peers[0]!.send(prepareFrame('late'))).toBe(false)
      await new Promise((resolve) => setTimeout(resolve, 50))
      expect(closedPeers).toHaveLength(1)
    })

    it('ends a connection when its expiresAt passes, unless it was moved later', async () => {
      await start()
      const [expiring, extended] = [await connect(), await connect()]
      await waitFor(() => peers.length === 2)
      expect(peers[0]!.expiresAt).toBeUndefined()
      const at = Date.now() + 150
      for (const peer of peers) peer.expiresAt = at
      expect(peers[0]!.expiresAt).toBe(at)
      peers[1]!.expiresAt = Date.now() + 60_000 // a refreshed token
      await expiring.closed
      await waitFor(() => closedPeers.length === 1)
      expect(closedPeers[0]).toBe(peers[0])
      expect(peers[1]!.send(prepareFrame('{"still":"open"}'))).toBe(true)
      expect(await extended.next()).toBe('{"still":"open"}')
      peers[1]!.expiresAt = undefined
      expect(peers[1]!.expiresAt).toBeUndefined()
      expect(() => {
        peers[1]!.expiresAt = Number.NaN
      }).toThrow(TypeError)
    })

    it('a client that goes away is reported closed once', async () => {
      await start()
      const client = await connect()
      await waitFor(() => peers.length === 1)
      client.close()
      await waitFor(() => closedPeers.length === 1)
      expect(closedPeers[0]).toBe(peers[0])
    })

    it('limits connections per IP (429), per user (429) and in all (503); closed ones give their slot back', async () => {
      const attempt = async (): Promise<ConformanceClient | number> => {
        const result = await server!.attempt()
        if (typeof result !== 'number') clients.push(result)
        return result
      }
      for (const [limits, status] of [
        [{ maxConnectionsPerIp: 2 }, 429],
        [{ maxConnectionsPerUser: 2 }, 429],
        [{ maxConnections: 2 }, 503],
      ] as const) {
        await start(limits)
        const [first] = [await attempt(), await attempt()]
        expect(await attempt()).toBe(status)
        ;(first as ConformanceClient).close()
        await waitFor(() => closedPeers.length === 1)
        expect(typeof (await attempt())).toBe('object')
        expect(await attempt()).toBe(status)
        for (const client of clients.splice(0)) client.close()
        await server!.close(200)
        peers.length = 0
        closedPeers.length = 0
      }
      server = undefined
    })

    it('server close ends every connection within the deadline', async () => {
      const running = await start()
      const connected = await Promise.all([connect(), connect()])
      await waitFor(() => peers.length === 2)
      const started = Date.now()
      await running.close(2_000)
      server = undefined
      await Promise.all(connected.map((client) => client.closed))
      expect(Date.now() - started).toBeLessThan(2_500)
      await waitFor(() => closedPeers.length === 2)
    })
  })
}
