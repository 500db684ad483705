import type { FlumenBindings } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import type { ConformanceClient } from '@flumen/testing'
import { describeTransportConformance, openSse } from '@flumen/testing'
import { sse } from './index.js'

describeTransportConformance({
  transport: 'sse',
  start: async (hooks) => {
    const app = createApp<{ Bindings: FlumenBindings; Variables: { user: unknown } }>()
    app.use('/events', async (c, next) => {
      c.set('user', hooks.user)
      await next()
    })
    app.get(
      '/events',
      sse((stream) => {
        hooks.onPeer(stream)
        stream.onClose(() => hooks.onPeerClosed(stream))
      }, hooks.limits),
    )
    const server = await serve(app, { port: 0, hostname: '127.0.0.1' })
    const open = async (): Promise<ConformanceClient | number> => {
      const client = await openSse(`${server.url}events`)
      if (client.response.statusCode !== 200) {
        client.close()
        return client.response.statusCode ?? 0
      }
      return {
        closed: client.closed,
        close: () => client.close(),
        next: async (timeoutMs) => (await client.next(() => true, timeoutMs)).data,
      }
    }
    return {
      connect: async () => {
        const client = await open()
        if (typeof client === 'number') throw new Error(`refused with ${client}`)
        return client
      },
      attempt: open,
      close: (timeoutMs) => server.close({ timeoutMs }),
    }
  },
})
