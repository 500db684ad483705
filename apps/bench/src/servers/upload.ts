// Multipart upload of one file field `file`, hashed with SHA-256 and written to a temp file
// (removed after), answering { size, sha256 }; GET /ping measures latency beside the upload.
import { createHash, randomUUID } from 'node:crypto'
import { createWriteStream, rmSync } from 'node:fs'
import { rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { createApp, serve as flumenServe } from '@flumen/core'
import { diskStorage, uploads } from '@flumen/uploads'
import { serve as honoServe } from '@hono/node-server'
import busboy from 'busboy'
import { Hono } from 'hono'
import { announce, implementation } from './harness.js'

const impl = implementation(['busboy', 'hono', 'flumen'])
const tempPath = (): string => join(tmpdir(), `flumen-bench-${randomUUID()}`)

if (impl === 'busboy') {
  const server = createServer((req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 4 }).end('pong')
      return
    }
    const parser = busboy({ headers: req.headers })
    const files: Promise<{ size: number; sha256: string }>[] = []
    parser.on('file', (_name, stream) => {
      const path = tempPath()
      const hash = createHash('sha256')
      let size = 0
      stream.on('data', (chunk: Buffer) => {
        hash.update(chunk)
        size += chunk.length
      })
      files.push(
        pipeline(stream, createWriteStream(path))
          .then(() => rm(path))
          .then(() => ({ size, sha256: hash.digest('hex') })),
      )
    })
    parser.on('close', () => {
      void Promise.all(files).then((result) => {
        const body = JSON.stringify(result[0])
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body)
      })
    })
    req.pipe(parser)
  })
  server.listen(0, '127.0.0.1', () => announce(server))
} else if (impl === 'flumen') {
  // The same work as the raw row: stream to a temp file with SHA-256, answer, remove the file.
  const dir = join(tmpdir(), `flumen-bench-uploads-${process.pid}`)
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
  const storage = diskStorage({ dir })
  const app = createApp()
  app.get('/ping', (c) => c.text('pong'))
  app.post(
    '/upload',
    uploads({
      storage,
      limits: { fileSize: 4 * 1024 * 1024 * 1024, totalSize: 4 * 1024 * 1024 * 1024 },
      onComplete: async ({ files }, c) => {
        const [file] = files
        await storage.remove(file!.id)
        return c.json({ size: file!.size, sha256: file!.sha256 })
      },
    }),
  )
  announce(await flumenServe(app, { port: 0, hostname: '127.0.0.1' }))
} else {
  const app = new Hono()
  app.get('/ping', (c) => c.text('pong'))
  app.post('/upload', async (c) => {
    const body = await c.req.parseBody()
    const file = body.file as File
    const bytes = Buffer.from(await file.arrayBuffer())
    const path = tempPath()
    await writeFile(path, bytes)
    await rm(path)
    return c.json({ size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') })
  })
  const server = honoServe({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () =>
    announce(server as never),
  )
}
