// The browser build applies deltas in Chromium, over its native WebSocket and fetch streams.
import { join } from 'node:path'
import { createHub } from '@flumen/broadcast'
import type { FlumenServer } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import { launchChromium, requireChromium, waitFor } from '@flumen/testing'
import { build } from 'esbuild'
import type { Browser } from 'playwright-core'
import { afterEach, describe, expect, it } from 'vitest'

const hasChromium = requireChromium('the Chromium delta test')

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const stateDocument = (version: number): Record<string, unknown> => ({
  version,
  note: `éè 漢字 🎉 version ${version}`, // multi-byte text and a surrogate pair: code units, not bytes
  rows: Array.from({ length: 100 }, (_, i) => ({ id: i, value: i === version % 100 ? version : i })),
})

describe.skipIf(!hasChromium)('deltas in Chromium', () => {
  it('reach the page whole through createClient and openEventStream', async () => {
    const bundle = await build({
      entryPoints: [join(import.meta.dirname, 'index.ts')],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      write: false,
      logLevel: 'silent',
    })
    const hub = createHub({ presence: false, logError: () => {} })
    const app = createApp({ logError: () => {} })
    app.get('/ws', hub.websocket())
    app.get('/sse', hub.sse({ heartbeatMs: false }))
    app.get('/client.js', (c) =>
      c.body(bundle.outputFiles[0]!.text, 200, { 'content-type': 'text/javascript' }),
    )
    app.get('/', (c) => c.html('<!doctype html><title>deltas</title>'))
    const server: FlumenServer = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] })
    cleanups.push(() => server.close({ timeoutMs: 200 }))
    const browser: Browser = await launchChromium()
    cleanups.push(() => browser.close())
    const page = await browser.newPage()
    // What reached the page's socket: deltas, not whole documents.
    const frames: string[] = []
    page.on('websocket', (socket) =>
      socket.on('framereceived', ({ payload }) => frames.push(String(payload))),
    )
    await page.goto(`http://127.0.0.1:${server.port}/`)
    await page.evaluate(`(async () => {
      const { createClient, openEventStream } = await import('/client.js')
      window.viaSocket = []
      window.viaStream = []
      const client = createClient({ url: 'ws://' + location.host + '/ws' })
      await client.subscribe('board', (data) => window.viaSocket.push(data), { delta: true }).ready
      const stream = openEventStream('/sse?topic=board', { delta: true })
      ;(async () => {
        for await (const event of stream)
          if (event.event === 'message') window.viaStream.push(JSON.parse(event.data).data)
          else if (event.event === 'position') window.streamReady = true
      })()
    })()`)
    await waitFor(async () => (await page.evaluate('window.streamReady === true')) as boolean)
    for (let version = 1; version <= 12; version++) await hub.publish('board', stateDocument(version))
    const expected = Array.from({ length: 12 }, (_, i) => stateDocument(i + 1))
    await waitFor(
      async () => (await page.evaluate('window.viaSocket.length + window.viaStream.length')) === 24,
    )
    expect(await page.evaluate('window.viaSocket')).toEqual(expected)
    expect(await page.evaluate('window.viaStream')).toEqual(expected)
    const messages = frames.filter((frame) => frame.startsWith('{"type":"message"'))
    expect(messages.length).toBe(12)
    expect(messages.filter((frame) => frame.includes('"delta":')).length).toBe(11)
  })
})
