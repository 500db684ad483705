// Installs every Flumen package that exists the way the demo app does, for the
// "flumen-all" rows: a plain route must not pay for the plugins beside it.
import { createHub } from '@flumen/broadcast'
import type { FlumenEnv, FlumenPlugin } from '@flumen/core'
import type { Hono } from 'hono'

export const installAll = (app: Hono<FlumenEnv>): FlumenPlugin[] => {
  const hub = createHub()
  app.get('/ws', hub.websocket({ maxConnections: 100_000, maxConnectionsPerIp: 100_000 }))
  app.get('/sse', hub.sse({ maxConnections: 100_000, maxConnectionsPerIp: 100_000 }))
  // Later packages (auth, uploads) add their middleware and routes here.
  return [hub]
}
