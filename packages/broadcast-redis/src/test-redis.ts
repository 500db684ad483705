// Tests need a real Redis. Locally a missing Redis skips them with a loud message; in CI
// (CI=true) it fails the run: a test that needs Redis never passes silently without it.
import { createConnection } from 'node:net'

export const redisUrl: string = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

const ping = (url: string): Promise<boolean> =>
  new Promise((resolve) => {
    const { hostname, port } = new URL(url)
    const socket = createConnection({ host: hostname, port: Number(port || 6379) })
    const done = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')))
  })

export const redisAvailable: boolean = await ping(redisUrl)

if (!redisAvailable) {
  const message = `Redis is not reachable at ${redisUrl}: start it with redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no`
  if (process.env.CI) throw new Error(`${message} (required in CI)`)
  console.warn(`\n\n!!! SKIPPING @flumen/broadcast-redis tests !!!\n${message}\n\n`)
}

/** A key prefix no other run uses, so runs never see each other's data. */
export const uniquePrefix = (): string =>
  `flumen-test:${process.pid}:${Date.now()}:${Math.random().toString(36).slice(2)}:`
