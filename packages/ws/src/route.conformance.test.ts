import type { FlumenBindings, FlumenServer } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import type { ConformanceClient } from '@flumen/testing'
import { describeTransportConformance } from '@flumen/testing'
import WebSocket from 'ws'
import { upgradeWebSocket } from './index.js'

const wsClient = (url: string): Promise<ConformanceClient> =>
  new Promise((resolve, reject) => {
    const socket = new WebSocket(url)
    socket.once('unexpected-response', (_req, res) =>
      reject(Object.assign(new Error('refused'), { status: res.statusCode })),
    )
    const queue: string[] = []
    const waiters: ((text: string) => void)[] = []
    socket.on('message', (data: Buffer) => {
      const text = data.toString()
      const waiter = waiters.shift()
      if (waiter) waiter(text)
      else queue.push(text)
    })
    const closed = new Promise<void>((done) => socket.once('close', () => done()))
    socket.once('error', reject)
    socket.once('open', () =>
      resolve({
        closed,
        close: () => socket.terminate(),
        next: (timeoutMs = 5_000) =>
          queue.length > 0
            ? Promise.resolve(queue.shift()!)
            : new Promise((done, fail) => {
                const timer = setTimeout(() => fail(new Error('no message in time')), timeoutMs)
                waiters.push((text) => {
                  clearTimeout(timer)
                  done(text)
                })
              }),
      }),
    )
  })

describeTransportConformance({
  transport: 'ws',
  start: async (hooks) => {
    const app = createApp<{ Bindings: FlumenBindings; Variables: { user: unknown } }>()
    app.use('/ws', async (c, next) => {
      c.set('user', hooks.user)
      await next()
    })
    app.get(
      '/ws',
      upgradeWebSocket(
        () => ({
          onOpen: (_event, ws) => hooks.onPeer(ws.peer),
          onClose: (_event, ws) => hooks.onPeerClosed(ws.peer),
        }),
        hooks.limits,
      ),
    )
    const server: FlumenServer = await serve(app, { port: 0, hostname: '127.0.0.1' })
    const url = `ws://127.0.0.1:${server.port}/ws`
    return {
      connect: () => wsClient(url),
      attempt: () => wsClient(url).catch((err: { status?: number }) => err.status ?? 0),
      close: (timeoutMs) => server.close({ timeoutMs }),
    }
  },
})
