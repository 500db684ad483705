import type { FlumenServer } from '@flumen/core'
import { serve } from '@flumen/core'
import { refusedUpgrade } from '@flumen/testing'
import { Hono } from 'hono'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { upgradeWebSocket } from './index.js'

// upgradeWebSocket() in an app that is not createApp(): a sub-app of a plain `new Hono()`, whose
// refusals Hono's own error handling answers.
const servers: FlumenServer[] = []
const clients: WebSocket[] = []
afterEach(async () => {
  for (const client of clients.splice(0)) client.terminate()
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 200 })))
})

const start = async (): Promise<string> => {
  const live = new Hono().get(
    '/echo',
    upgradeWebSocket(() => ({ onMessage: (event, ws) => ws.send(String(event.data)) }), {
      allowedOrigins: ['https://app.example'],
    }),
  )
  const app = new Hono().route('/live', live)
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', logError: () => {} })
  servers.push(server)
  return `127.0.0.1:${server.port}/live/echo`
}

describe('upgradeWebSocket() in a plain new Hono()', () => {
  it('answers a plain GET 426 with Upgrade: websocket and the JSON error body', async () => {
    const res = await fetch(`http://${await start()}`)
    expect(res.status).toBe(426)
    expect(res.headers.get('upgrade')).toBe('websocket')
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await res.json()).toEqual({
      error: { code: 'UPGRADE_REQUIRED', message: 'This route only accepts WebSocket connections' },
    })
  })

  it('refuses an upgrade from a foreign origin 403 with the JSON body, and accepts its own', async () => {
    const address = await start()
    const denied = await refusedUpgrade(`ws://${address}`, { headers: { origin: 'https://evil.example' } })
    expect(denied.status).toBe(403)
    expect(denied.headers['content-type']).toMatch(/^application\/json/)
    expect(JSON.parse(denied.body)).toEqual({ error: { code: 'FORBIDDEN', message: 'Origin not allowed' } })

    const client = new WebSocket(`ws://${address}`, { headers: { origin: 'https://app.example' } })
    clients.push(client)
    const echoed = new Promise<string>((resolve) => client.once('message', (data) => resolve(String(data))))
    client.once('open', () => client.send('hello'))
    expect(await echoed).toBe('hello')
  })
})
