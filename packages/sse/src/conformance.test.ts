import type { FlumenBindings } from '@flumen/core'
import { createApp, serve } from '@flumen/core'
import { describeTransportConformance } from '@flumen/ws/conformance'
import { sse } from './index.js'
import { openSse } from './test-client.js'

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
      }),
    )
    const server = await serve(app, { port: 0, hostname: '127.0.0.1' })
    return {
      connect: async () => {
        const client = await openSse(`${server.url}events`)
        return {
          closed: client.closed,
          close: () => client.close(),
          next: async (timeoutMs) => (await client.next(() => true, timeoutMs)).data,
        }
      },
      close: (timeoutMs) => server.close({ timeoutMs }),
    }
  },
})
