// HTTP hello: raw node:http (reference), bare Hono on @hono/node-server, Flumen core with no
// plugins and with every plugin installed, fastify.
import { createServer } from 'node:http'
import { createApp, serve as flumenServe } from '@flumen/core'
import { serve as honoServe } from '@hono/node-server'
import Fastify from 'fastify'
import { Hono } from 'hono'
import { announce, implementation } from './harness.js'

const body = 'Hello, world!'
const impl = implementation(['raw', 'hono', 'flumen', 'flumen-all', 'fastify'])

if (impl === 'raw') {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain; charset=UTF-8', 'content-length': body.length })
    res.end(body)
  })
  server.listen(0, '127.0.0.1', () => announce(server))
} else if (impl === 'hono') {
  const app = new Hono()
  app.get('/', (c) => c.text(body))
  const server = honoServe({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () =>
    announce(server as never),
  )
} else if (impl === 'fastify') {
  const app = Fastify()
  app.get('/', (_req, reply) => {
    reply.type('text/plain; charset=UTF-8').send(body)
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  announce(app.server)
} else {
  const app = createApp()
  // "Every plugin installed" grows with the packages: each one that exists registers here
  // the way an app would, so the HTTP row shows what the plugins cost a plain route.
  const plugins = impl === 'flumen-all' ? (await import('./flumen-plugins.js')).installAll(app) : []
  app.get('/', (c) => c.text(body))
  const server = await flumenServe(app, { port: 0, hostname: '127.0.0.1', plugins })
  announce(server)
}
