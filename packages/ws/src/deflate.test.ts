// permessage-deflate with prepared frames: a message for many peers is compressed once, and the
// same bytes inflate for every client that negotiated the route's terms (real `ws` clients).
import { once } from 'node:events'
import type { FlumenBindings, FlumenServer } from '@flumen/core'
import { createApp, prepareBatch, prepareFrame, serve } from '@flumen/core'
import { launchChromium, requireChromium } from '@flumen/testing'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import type { WebSocketRoute } from './index.js'
import { upgradeWebSocket } from './index.js'

type TestEnv = { Bindings: FlumenBindings; Variables: { user: unknown } }

const hasChromium = requireChromium('the Chromium permessage-deflate test')

const servers: FlumenServer[] = []
const clients: WebSocket[] = []
afterEach(async () => {
  for (const client of clients.splice(0)) client.terminate()
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 200 })))
})

const start = async (): Promise<{ route: WebSocketRoute; url: string }> => {
  const app = createApp<TestEnv>({ logError: () => {} })
  const route = upgradeWebSocket(() => ({}), { perMessageDeflate: true })
  app.get('/ws', route)
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', logError: () => {} })
  servers.push(server)
  return { route, url: `ws://127.0.0.1:${server.port}/ws` }
}

const connect = async (
  url: string,
  options: WebSocket.ClientOptions,
): Promise<{ client: WebSocket; texts: string[] }> => {
  const client = new WebSocket(url, options)
  clients.push(client)
  const texts: string[] = []
  client.on('message', (data: Buffer) => texts.push(data.toString()))
  await once(client, 'open')
  return { client, texts }
}

/** A state document of ~20 KB: compresses well, as JSON does. */
const documentOf = (version: number): string =>
  JSON.stringify({
    version,
    rows: Array.from({ length: 200 }, (_, i) => ({ id: i, name: `row ${i}`, value: (i * version) % 97 })),
  })

describe('permessage-deflate with prepared frames', () => {
  it('compresses a message once for all deflate peers; plain peers and other window sizes still get it', async () => {
    const { route, url } = await start()
    const shared = await Promise.all([1, 2, 3].map(() => connect(url, { perMessageDeflate: true })))
    const plain = await connect(url, { perMessageDeflate: false })
    // A client that caps the server's window: its frames cannot be the shared ones (ws compresses them).
    const narrow = await connect(url, { perMessageDeflate: { serverMaxWindowBits: 10 } })
    await expect.poll(() => route.peers.size).toBe(5)
    const everyone = [...shared, plain, narrow]

    const sent: string[] = []
    for (let version = 1; version <= 5; version++) {
      const big = prepareFrame(documentOf(version))
      const small = prepareFrame(`{"tick":${version}}`) // under the 1 KiB threshold: never compressed
      sent.push(documentOf(version), `{"tick":${version}}`)
      for (const peer of route.peers) peer.send(prepareBatch([big, small]))
      // The compressed bytes were made once and kept with the frame for the next peers.
      for (const peer of route.peers) expect(peer.send(big)).toBe(true)
      sent.push(documentOf(version))
      expect(big.wire.wsDeflate).toBeInstanceOf(Buffer)
      expect(big.wire.wsDeflate!.length).toBeLessThan(big.wire.ws?.length ?? Number.POSITIVE_INFINITY)
    }
    await expect.poll(() => everyone.every(({ texts }) => texts.length === sent.length)).toBe(true)
    for (const { texts } of everyone) expect(texts).toEqual(sent)

    // On the wire: the deflate peers read a fraction of what the plain one did.
    const bytesRead = (client: WebSocket): number =>
      (client as unknown as { _socket: { bytesRead: number } })._socket.bytesRead
    for (const { client } of shared) expect(bytesRead(client) * 4).toBeLessThan(bytesRead(plain.client))
    expect(bytesRead(narrow.client) * 4).toBeLessThan(bytesRead(plain.client))
  })

  it('keeps the order of ws-built and directly written frames on a deflate peer', async () => {
    const app = createApp<TestEnv>({ logError: () => {} })
    // onMessage answers through ws.send() (compressed by `ws`, asynchronously) and with a prepared frame.
    const route = upgradeWebSocket(
      () => ({
        onMessage: (event, ws) => {
          for (let i = 0; i < 20; i++) {
            ws.send(`${'a'.repeat(2000)}${event.data}-${i}-ws`)
            ws.peer.send(prepareFrame(`${'b'.repeat(2000)}${event.data}-${i}-direct`))
          }
        },
      }),
      { perMessageDeflate: true },
    )
    app.get('/ws', route)
    const server = await serve(app, { port: 0, hostname: '127.0.0.1', logError: () => {} })
    servers.push(server)
    const { client, texts } = await connect(`ws://127.0.0.1:${server.port}/ws`, { perMessageDeflate: true })
    client.send('m')
    await expect.poll(() => texts.length).toBe(40)
    expect(texts.map((text) => text.slice(2000))).toEqual(
      Array.from({ length: 20 }, (_, i) => [`m-${i}-ws`, `m-${i}-direct`]).flat(),
    )
  })

  it.skipIf(!hasChromium)(
    'inflates in Chromium’s native WebSocket, which offers permessage-deflate itself',
    async () => {
      const { route, url } = await start()
      const browser = await launchChromium()
      try {
        const page = await browser.newPage()
        // A string, not a function: in this module `WebSocket` is the `ws` import, in the page the browser's.
        const received = page.evaluate(`new Promise((resolve) => {
          const ws = new WebSocket(${JSON.stringify(url)})
          const texts = []
          ws.onmessage = (event) => {
            texts.push(event.data)
            if (texts.length === 6) resolve({ extensions: ws.extensions, texts })
          }
        })`) as Promise<{ extensions: string; texts: string[] }>
        await expect.poll(() => route.peers.size).toBe(1)
        const sent: string[] = []
        for (let version = 1; version <= 3; version++) {
          const big = prepareFrame(documentOf(version))
          for (const peer of route.peers) peer.send(prepareBatch([big, prepareFrame(`{"tick":${version}}`)]))
          sent.push(documentOf(version), `{"tick":${version}}`)
          expect(big.wire.wsDeflate).toBeInstanceOf(Buffer) // the shared compressed frame went out
        }
        const { extensions, texts } = await received
        expect(extensions).toContain('server_no_context_takeover')
        expect(texts).toEqual(sent)
      } finally {
        await browser.close()
      }
    },
  )
})
