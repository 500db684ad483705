// Started by signals.test.ts in a child process: serves a slow route with handleSignals on.
import { createApp, serve } from '@flumen/core'

const app = createApp()
app.get('/slow', async (c) => {
  await new Promise((resolve) => setTimeout(resolve, 300))
  return c.text('finished')
})
const server = await serve(app, {
  port: 0,
  hostname: '127.0.0.1',
  handleSignals: true,
  shutdownTimeoutMs: 5_000,
  plugins: [{ name: 'report', stop: () => void process.stdout.write('stopped\n') }],
})
process.stdout.write(`${server.url}\n`)
