import type { FlumenServer } from '@flumen/core'
import { FlumenError, serve } from '@flumen/core'
import type { TestSseClient } from '@flumen/testing'
import { openSse } from '@flumen/testing'
import { Hono } from 'hono'
import { afterEach, describe, expect, it } from 'vitest'
import { sse } from './index.js'

// sse() in a sub-app of a plain `new Hono()`: refusals are Hono's HTTPExceptions, answered as JSON.
const servers: FlumenServer[] = []
const streams: TestSseClient[] = []
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close()
  await Promise.all(servers.splice(0).map((server) => server.close({ timeoutMs: 200 })))
})

const start = async (): Promise<string> => {
  const events = new Hono().get(
    '/clock',
    sse(
      (stream, c) => {
        if (c.req.query('tz') === 'mars') throw new FlumenError('BAD_REQUEST', 'Unknown time zone')
        stream.sendEvent({ event: 'tick', data: 'now' })
      },
      { heartbeatMs: false, maxConnections: 1 },
    ),
  )
  const app = new Hono().route('/events', events)
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', logError: () => {} })
  servers.push(server)
  return `${server.url}events/clock`
}

const refusal = (url: string): Promise<Response> => fetch(url, { headers: { accept: 'text/event-stream' } })

describe('sse() in a plain new Hono()', () => {
  it("answers a handler's FlumenError with its status and JSON body, and streams otherwise", async () => {
    const url = await start()
    const refused = await refusal(`${url}?tz=mars`)
    expect(refused.status).toBe(400)
    expect(refused.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await refused.json()).toEqual({ error: { code: 'BAD_REQUEST', message: 'Unknown time zone' } })

    const stream = await openSse(url)
    streams.push(stream)
    expect(stream.response.statusCode).toBe(200)
    expect(stream.response.headers['content-type']).toMatch(/^text\/event-stream/)
    expect((await stream.next((e) => e.event === 'tick')).data).toBe('now')
  })

  it('answers a stream over maxConnections 503 with the JSON body', async () => {
    const url = await start()
    const first = await openSse(url)
    streams.push(first)
    await first.next((e) => e.event === 'tick')
    const second = await refusal(url)
    expect(second.status).toBe(503)
    expect(await second.json()).toEqual({ error: { code: 'UNAVAILABLE', message: 'Too many connections' } })
  })
})
