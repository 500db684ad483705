// Yjs document servers: y-websocket's own (@y/websocket-server, in memory) and Flumen's (@flumen/yjs
// on the hub's memory engine). Every connection edits the document `bench`.
import { createServer } from 'node:http'
import { createHub } from '@flumen/broadcast'
import { createApp, serve } from '@flumen/core'
import { yjs } from '@flumen/yjs'
import { setupWSConnection } from '@y/websocket-server/utils'
import { WebSocketServer } from 'ws'
import { announce, implementation } from './harness.js'

const impl = implementation(['y-websocket', 'flumen-yjs'])

if (impl === 'y-websocket') {
  const server = createServer()
  const wss = new WebSocketServer({ noServer: true })
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => setupWSConnection(ws, req, { docName: 'bench' }))
  })
  server.listen(0, '127.0.0.1', () => announce(server))
} else {
  const hub = createHub({ logError: () => {} })
  // The load's limits lifted: every editor is 127.0.0.1, one writer sends as fast as it is answered.
  const docs = yjs({ hub, maxUpdatesPerSecond: 1_000_000 })
  const app = createApp()
  app.get(
    '/ws',
    hub.websocket({
      rateLimit: { messagesPerSecond: 1e6, burst: 1e6 },
      maxConnections: 100_000,
      maxConnectionsPerIp: 100_000,
    }),
  )
  const server = await serve(app, { port: 0, hostname: '127.0.0.1', plugins: [hub, docs] })
  announce(server)
}
