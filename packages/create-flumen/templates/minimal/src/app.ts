// One Hono app, four kinds of route: plain HTTP, a WebSocket hub (protocol flumen.v1), the same
// topics over Server-Sent Events, and a streaming upload that announces each file on the hub.
import { createHub } from '@flumen/broadcast'
import { createApp } from '@flumen/core'
import { memoryStorage, uploads } from '@flumen/uploads'

export const hub = createHub({
  // Clients may read and write `chat:*`; anything else is refused (FORBIDDEN).
  authorize: ({ topic }) => topic.startsWith('chat:'),
})

export const app = createApp()
app.get('/healthz', (c) => c.json({ status: 'ok' }))
app.get('/ws', hub.websocket()) // WebSocket: subscribe, publish, call
app.get('/sse', hub.sse()) // GET /sse?topic=chat:lobby: the same messages as an event stream
app.post(
  '/upload',
  uploads({
    storage: memoryStorage(),
    limits: { fileSize: 10 * 1024 * 1024 },
    onComplete: async ({ files }) => {
      for (const file of files)
        await hub.publish('chat:lobby', { type: 'file', name: file.name, size: file.size })
      return undefined // 201 with the stored files
    },
  }),
)
