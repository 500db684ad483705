// The inspector's page in Chromium, under a strict Content-Security-Policy (no inline script or style).
import { once } from 'node:events'
import { createHub } from '@flumen/broadcast'
import type { FlumenServer } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import { launchChromium, requireChromium } from '@flumen/testing'
import { secureHeaders } from 'hono/secure-headers'
import type { Browser } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { inspector } from './index.js'

const hasChromium = requireChromium('the inspector’s Chromium test')

let browser: Browser | undefined
const servers: FlumenServer[] = []
const sockets: WebSocket[] = []
beforeAll(async () => {
  if (!hasChromium) return
  browser = await launchChromium()
})
afterAll(async () => {
  await browser?.close()
})
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.terminate()
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 200 })))
})

const start = async (readOnly: boolean) => {
  const hub = createHub()
  const app = createApp()
  app.use('*', secureHeaders({ contentSecurityPolicy: { defaultSrc: ["'self'"] } }))
  app.use('/ws', async (c, next) => {
    c.set('user' as never, { id: c.req.query('user'), name: `<b>${c.req.query('user')}</b>` } as never)
    await next()
  })
  app.get('/ws', hub.websocket())
  app.route('/ops', inspector({ hub, readOnly }))
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] })
  servers.push(server)
  const connect = async (user: string, topic: string) => {
    const socket = new WebSocket(`ws://127.0.0.1:${server.port}/ws?user=${user}`, 'flumen.v1')
    sockets.push(socket)
    const received: Record<string, unknown>[] = []
    socket.on('message', (data: Buffer) => received.push(JSON.parse(data.toString())))
    await once(socket, 'open')
    socket.send(JSON.stringify({ type: 'subscribe', id: 1, topic }))
    await expect.poll(() => received.length).toBeGreaterThan(0)
    return { socket, received }
  }
  return { hub, url: `http://127.0.0.1:${server.port}/ops`, connect }
}

describe.skipIf(!hasChromium)('the inspector page in Chromium', () => {
  it('lists connections and topics, opens a topic, publishes to it and disconnects a connection', async () => {
    const { hub, url, connect } = await start(false)
    const ann = await connect('ann', 'room:1')
    await connect('bob', 'room:1')
    await hub.publish('room:1', { text: '<img src=x onerror=alert(1)>' })
    const page = await browser!.newPage()
    const problems: string[] = []
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text())
    })
    page.on('pageerror', (error) => problems.push(error.message))
    page.on('response', (response) => {
      if (response.status() >= 400) problems.push(`${response.status()} ${response.url()}`)
    })
    await page.goto(url)
    await page.getByRole('cell', { name: '{"id":"ann","name":"<b>ann</b>"}' }).waitFor()
    expect(await page.locator('#connections tbody tr').count()).toBe(2)
    await page.getByRole('button', { name: 'room:1' }).click()
    await page.locator('#topic-messages li').first().waitFor()
    // Client data is shown as text, never as HTML.
    expect(await page.locator('#topic-messages li').first().textContent()).toBe(
      '{"text":"<img src=x onerror=alert(1)>"}',
    )
    expect(await page.locator('#topic-messages img').count()).toBe(0)

    await page.locator('#publish-data').fill('{"text":"from the inspector"}')
    await page.getByRole('button', { name: 'Publish' }).click()
    await expect
      .poll(() => ann.received.some((m) => (m.data as { text?: string })?.text === 'from the inspector'))
      .toBe(true)

    const closed = once(ann.socket, 'close')
    const annId = hub.inspect().connections.find((c) => (c.user as { id: string }).id === 'ann')!.id
    await page
      .getByRole('row', { name: new RegExp(annId) })
      .getByRole('button', { name: 'Disconnect' })
      .click()
    expect(((await closed) as [number])[0]).toBe(1008)
    await expect.poll(() => page.locator('#connections tbody tr').count(), { timeout: 5_000 }).toBe(1)
    await page.screenshot({ path: `${process.env.TMPDIR ?? '/tmp'}/flumen-inspector.png`, fullPage: true })
    expect(problems).toEqual([])
    await page.close()
  })

  it('read-only: no action is offered', async () => {
    const { url, connect } = await start(true)
    await connect('ann', 'news')
    const page = await browser!.newPage()
    await page.goto(url)
    await page.getByText('(read-only)').waitFor()
    await page.locator('#connections tbody tr').first().waitFor()
    expect(await page.getByRole('button', { name: 'Disconnect' }).count()).toBe(0)
    await page.getByRole('button', { name: 'news' }).click()
    await page.locator('#topic-title').filter({ hasText: 'news' }).waitFor()
    expect(await page.locator('#publish').isHidden()).toBe(true)
    await page.close()
  })
})
