// Standard clients run in a process of their own: a client in the server's event loop never sees
// what a real one sees (an early answer followed by a reset, say), because both sides take turns.

import { spawn } from 'node:child_process'

export interface ClientReply {
  status: number
  headers: Record<string, string>
  text: string
}

/** A client's answer, or the error it failed with (its `cause` code, e.g. `EPIPE`). */
export type ClientOutcome = ({ ok: true } & ClientReply) | { ok: false; error: string }

export interface FetchBody {
  /** Bytes of the body (sent as `multipart/form-data` with one file when `multipart` is set). */
  size: number
  /** The body is streamed in chunks of this size, waiting `delayMs` between them. */
  chunkSize?: number
  delayMs?: number
  /** Send the bytes as the file `file` of a form (`FormData`, as a browser does). */
  multipart?: boolean
}

export interface FetchRequest {
  url: string
  method?: string
  headers?: Record<string, string>
  body?: FetchBody
}

// Runs in the child: Node's fetch (undici), the body built there so nothing large crosses argv.
const fetchScript = `
const { url, method, headers, body } = JSON.parse(process.argv[1])
const init = { method: method ?? (body ? 'POST' : 'GET'), headers: headers ?? {} }
if (body) {
  const bytes = Buffer.alloc(body.size, 120)
  if (body.multipart) {
    const form = new FormData()
    form.append('file', new Blob([bytes]), 'file.bin')
    init.body = form
  } else if (body.chunkSize) {
    let at = 0
    init.duplex = 'half'
    init.body = new ReadableStream({
      async pull(controller) {
        if (at >= bytes.length) return controller.close()
        if (at > 0 && body.delayMs) await new Promise((r) => setTimeout(r, body.delayMs))
        controller.enqueue(bytes.subarray(at, at + body.chunkSize))
        at += body.chunkSize
      },
    })
  } else init.body = bytes
}
try {
  const res = await fetch(url, init)
  const text = await res.text()
  process.stdout.write(JSON.stringify({ ok: true, status: res.status, headers: Object.fromEntries(res.headers), text }))
} catch (err) {
  process.stdout.write(JSON.stringify({ ok: false, error: String(err?.cause?.code ?? err?.cause ?? err) }))
}
`

const run = (command: string, args: readonly string[], timeoutMs: number): Promise<string> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk
    })
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk
    })
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      if (out.length > 0 || code === 0) resolve(out)
      else reject(new Error(`${command} exited ${code}: ${err.slice(0, 500)}`))
    })
  })

/** `fetch()` from a separate Node process. */
export const fetchOutOfProcess = async (request: FetchRequest, timeoutMs = 30_000): Promise<ClientOutcome> =>
  JSON.parse(
    await run(
      process.execPath,
      ['--input-type=module', '-e', fetchScript, JSON.stringify(request)],
      timeoutMs,
    ),
  ) as ClientOutcome

/**
 * curl with `args` (the URL included); resolves with the status, headers and body it read, or the
 * error it exited with.
 */
export const curl = async (args: readonly string[], timeoutMs = 30_000): Promise<ClientOutcome> => {
  // After the body: a marker line, then the status, the final response's headers and the exit code.
  const marker = '\n--flumen-curl--\n'
  const headersMarker = '\n--flumen-curl-headers--\n'
  const out = await run(
    'curl',
    ['-sS', '-w', `${marker}%{json}${headersMarker}%{header_json}`, ...args],
    timeoutMs,
  ).catch((err: Error) => err.message)
  const at = out.lastIndexOf(marker)
  if (at === -1) return { ok: false, error: out.trim() }
  const [info, headerJson] = out.slice(at + marker.length).split(headersMarker)
  const {
    http_code: status,
    exitcode,
    errormsg,
  } = JSON.parse(info!) as {
    http_code: number
    exitcode: number
    errormsg: string | null
  }
  if (exitcode !== 0 && status === 0) return { ok: false, error: errormsg ?? `exit ${exitcode}` }
  const headers: Record<string, string> = {}
  for (const [name, values] of Object.entries(JSON.parse(headerJson ?? '{}') as Record<string, string[]>))
    headers[name] = values.join(', ')
  return { ok: true, status, headers, text: out.slice(0, at) }
}
