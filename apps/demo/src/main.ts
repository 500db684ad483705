import { serve } from '@flumen/core'
import { buildDemo } from './app.js'
import { loadConfig } from './config.js'

const config = loadConfig()
const { app, plugins } = buildDemo(config)
// SIGTERM/SIGINT: stop accepting, close WebSockets with 1001 and end SSE streams, then exit 0.
const server = await serve(app, { port: config.port, hostname: config.host, plugins, handleSignals: true })
console.log(
  `Flumen Rooms on ${server.url} (${config.redisUrl ? 'Redis engine' : 'SQLite engine'}, data in ${config.dataDir})`,
)
