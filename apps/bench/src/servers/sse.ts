// SSE fan-out: GET /sse?topic=bench opens a stream; POST /publish sends its body to every stream
// as one event.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer } from 'node:http'
import { createHub } from '@flumen/broadcast'
import { createApp, serve as flumenServe } from '@flumen/core'
import { serve as honoServe } from '@hono/node-server'
import { createChannel, createSession } from 'better-sse'
import { Hono } from 'hono'
import type { SSEStreamingApi } from 'hono/streaming'
import { streamSSE } from 'hono/streaming'
import { announce, implementation } from './harness.js'

const impl = implementation(['raw', 'hono', 'better-sse', 'flumen'])

const readBody = async (req: IncomingMessage): Promise<string> => {
  let body = ''
  req.setEncoding('utf8')
  for await (const chunk of req) body += chunk
  return body
}

const nodeServer = (
  open: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>,
  publish: (data: string) => void,
): void => {
  const server = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/publish') {
      void readBody(req).then((data) => {
        publish(data)
        res.writeHead(204).end()
      })
    } else if (req.url?.startsWith('/sse')) {
      void open(req, res)
    } else {
      res.writeHead(404).end()
    }
  })
  server.listen(0, '127.0.0.1', () => announce(server))
}

if (impl === 'raw') {
  const streams = new Set<ServerResponse>()
  nodeServer(
    (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      res.write('retry: 1000\n\n')
      streams.add(res)
      req.on('close', () => streams.delete(res))
    },
    (data) => {
      const frame = `data: ${data}\n\n`
      for (const res of streams) res.write(frame)
    },
  )
} else if (impl === 'better-sse') {
  const channel = createChannel()
  nodeServer(
    async (req, res) => {
      channel.register(await createSession(req, res))
    },
    (data) => {
      channel.broadcast(data)
    },
  )
} else if (impl === 'flumen') {
  // The hub's SSE route: streams subscribe to `bench`; POST /publish goes through hub.publish.
  const hub = createHub({ presence: false })
  const app = createApp()
  app.get('/sse', hub.sse({ maxConnections: 100_000, maxConnectionsPerIp: 100_000 }))
  app.post('/publish', async (c) => {
    await hub.publish('bench', await c.req.text())
    return c.body(null, 204)
  })
  announce(await flumenServe(app, { port: 0, hostname: '127.0.0.1', plugins: [hub] }))
} else {
  const streams = new Set<SSEStreamingApi>()
  const app = new Hono()
  app.get('/sse', (c) =>
    streamSSE(c, async (stream) => {
      streams.add(stream)
      await new Promise<void>((resolve) => stream.onAbort(resolve))
      streams.delete(stream)
    }),
  )
  app.post('/publish', async (c) => {
    const data = await c.req.text()
    for (const stream of streams) void stream.writeSSE({ data })
    return c.body(null, 204)
  })
  const server = honoServe({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () =>
    announce(server as never),
  )
}
