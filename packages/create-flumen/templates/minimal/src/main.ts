import { serve } from '@flumen/core'
import { app, hub } from './app.js'

const server = await serve(app, {
  port: Number(process.env.PORT ?? 3000),
  plugins: [hub],
  handleSignals: true, // SIGTERM/SIGINT: close gracefully, then exit 0
})
console.log(`Listening on ${server.url}`)
