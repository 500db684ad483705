// Resumable uploads over tus 1.0 (creation, termination): the file goes up in chunks, each PATCH
// from the offset the server has; after a drop the client asks the server where it stands (HEAD)
// and goes on from there, and a file chosen again after a reload continues the upload its
// fingerprint names. The requests themselves are the platform's (XHR in browsers, fetch in Node).
import { FlumenClientError } from './errors.js'
import type { UploadProgress } from './upload.js'
import { parseBody } from './upload.js'

/** One HTTP exchange of the upload, as the platform makes it. */
export interface TusRequest {
  method: 'POST' | 'HEAD' | 'PATCH' | 'DELETE'
  url: string
  headers: Record<string, string>
  body?: Blob
  /** Bytes of `body` sent so far. */
  onSent?: (bytes: number) => void
  signal: AbortSignal
}

export interface TusResponse {
  status: number
  header(name: string): string | null
  text: string
}

/** Sends a request; rejects with CONNECTION_REFUSED on a network failure, ABORTED on the signal. */
export type TusTransport = (request: TusRequest) => Promise<TusResponse>

/** Where the URL of an unfinished upload is kept, by the file's fingerprint (`localStorage` fits). */
export interface ResumeStore {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
}

export interface ResumableUploadOptions {
  /**
   * `Upload-Metadata` pairs; `filename` and `filetype` come from the file unless given.
   * @default {}
   */
  metadata?: Record<string, string>
  /** Headers of every request (a token: `authorization`). Cookies go along in browsers. */
  headers?: Record<string, string>
  /**
   * Bytes per PATCH: what a drop can cost to send again (the server keeps what arrived of a cut
   * PATCH, so usually less).
   * @default 8_388_608 (8 MiB)
   */
  chunkSize?: number
  onProgress?: (progress: UploadProgress) => void
  /** Stops the upload: the promise rejects with ABORTED (see `removeOnAbort`). */
  signal?: AbortSignal
  /**
   * Where unfinished uploads are remembered, so the same file (name, type, size, last change)
   * chosen again, after a reload too, continues where it stopped; `false` starts afresh each time.
   * @default globalThis.localStorage when there is one (browsers), else none
   */
  store?: ResumeStore | false
  /**
   * Waits before each retry after a request fails for a passing reason (the network, 5xx, 408, 409,
   * 423, 429); as many retries in a row as entries, counted again once bytes go through.
   * @default [500, 1_000, 2_000, 4_000, 8_000]
   */
  retryDelaysMs?: readonly number[]
  /**
   * After an abort, delete the unfinished upload on the server (tus termination) and forget it.
   * @default true
   */
  removeOnAbort?: boolean
}

export interface ResumableUploadResult {
  /** The upload's URL on the server. */
  url: string
  size: number
  /** Bytes the server already had when this call began (0 for a new upload). */
  resumedFrom: number
}

const tusVersion = '1.0.0'
const retryable = new Set([408, 409, 423, 429])
const defaultRetryDelays = [500, 1_000, 2_000, 4_000, 8_000] as const

/** A file as the upload sees it: a Blob, with a File's name and change time when it has them. */
export type ResumableFile = Blob & { readonly name?: string; readonly lastModified?: number }

const base64 = (text: string): string => {
  const bytes = new TextEncoder().encode(text)
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  return btoa(binary)
}

const defaultStore = (): ResumeStore | undefined => {
  try {
    return (globalThis as { localStorage?: ResumeStore }).localStorage
  } catch {
    return undefined // storage disabled (a sandboxed frame)
  }
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(new FlumenClientError('ABORTED', 'Upload aborted'))
      return
    }
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(new FlumenClientError('ABORTED', 'Upload aborted'))
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })

/** An answer that ends the upload: its JSON error's message when the server sent one. */
const refusal = (response: TusResponse, what: string): FlumenClientError => {
  const body = parseBody(response.text) as { error?: { message?: unknown } } | string
  const message =
    typeof body === 'object' && typeof body?.error?.message === 'string'
      ? body.error.message
      : `${what} answered ${response.status}`
  return new FlumenClientError('HTTP_ERROR', message, { status: response.status })
}

/**
 * Deletes an unfinished upload (tus termination), trying again for a moment while the server still
 * handles the PATCH the abort cut (409); a failure leaves it to the server's expiry.
 */
const terminate = async (
  transport: TusTransport,
  url: string,
  headers: Record<string, string>,
): Promise<void> => {
  const signal = new AbortController().signal
  for (let attempt = 0; attempt < 5; attempt++) {
    const response = await transport({ method: 'DELETE', url, headers, signal }).catch(() => undefined)
    if (response?.status !== 409) return
    await sleep(100 * 2 ** attempt, signal)
  }
}

/** Checks options up front, as every factory of the package does. */
const resolveOptions = (
  options: ResumableUploadOptions,
): { chunkSize: number; retryDelaysMs: readonly number[]; store: ResumeStore | undefined } => {
  const chunkSize = options.chunkSize ?? 8_388_608
  if (!Number.isSafeInteger(chunkSize) || chunkSize < 1)
    throw new Error('resumableUpload: chunkSize must be a positive integer')
  const retryDelaysMs = options.retryDelaysMs ?? defaultRetryDelays
  if (!Array.isArray(retryDelaysMs) || retryDelaysMs.some((ms) => !(Number.isFinite(ms) && ms >= 0)))
    throw new Error('resumableUpload: retryDelaysMs must be a list of delays >= 0')
  const store = options.store === false ? undefined : (options.store ?? defaultStore())
  return { chunkSize, retryDelaysMs, store }
}

/** Uploads `file` to a tus endpoint with `transport`, resuming what the store knows of it. */
export const resumableUploadWith = async (
  transport: TusTransport,
  endpoint: string,
  file: ResumableFile,
  options: ResumableUploadOptions = {},
): Promise<ResumableUploadResult> => {
  const { chunkSize, retryDelaysMs, store } = resolveOptions(options)
  const size = file.size
  const signal = options.signal ?? new AbortController().signal
  if (signal.aborted) throw new FlumenClientError('ABORTED', 'Upload aborted')
  const fingerprint = `flumen-tus:${endpoint}:${file.name ?? ''}:${file.type}:${size}:${file.lastModified ?? ''}`
  const headers = (extra: Record<string, string>): Record<string, string> => ({
    ...options.headers,
    'tus-resumable': tusVersion,
    ...extra,
  })

  /** Failures for a passing reason in a row: each waits its retry delay; bytes going through reset it. */
  let failures = 0
  const passing = (status: number): boolean => status >= 500 || retryable.has(status)
  /** Waits the next retry delay, or throws `err` once they are spent. */
  const backOff = async (err: FlumenClientError): Promise<void> => {
    if (failures >= retryDelaysMs.length) throw err
    await sleep(retryDelaysMs[failures++]!, signal)
  }
  const send = async (request: Omit<TusRequest, 'signal'>): Promise<TusResponse | FlumenClientError> => {
    try {
      return await transport({ ...request, signal })
    } catch (err) {
      if (signal.aborted) throw err
      return err instanceof FlumenClientError
        ? err
        : new FlumenClientError('CONNECTION_REFUSED', 'The upload failed (network)', { cause: err })
    }
  }
  /** A request without a body (POST, HEAD), sent again after passing failures. */
  const attempt = async (request: Omit<TusRequest, 'signal'>): Promise<TusResponse> => {
    for (;;) {
      const response = await send(request)
      if (response instanceof FlumenClientError) await backOff(response)
      else if (passing(response.status)) await backOff(refusal(response, request.method))
      else return response
    }
  }

  /** Where the server stands on `url`: its offset, or undefined when it no longer has the upload. */
  const offsetAt = async (url: string): Promise<number | undefined> => {
    const response = await attempt({ method: 'HEAD', url, headers: headers({}) })
    if (response.status === 404 || response.status === 410 || response.status === 403) return undefined
    const offset = Number(response.header('upload-offset'))
    if (response.status !== 200 || !Number.isSafeInteger(offset)) throw refusal(response, 'HEAD')
    return offset
  }

  const create = async (): Promise<string> => {
    const metadata = {
      ...(file.name && { filename: file.name }),
      ...(file.type && { filetype: file.type }),
      ...options.metadata,
    }
    const response = await attempt({
      method: 'POST',
      url: endpoint,
      headers: headers({
        'upload-length': String(size),
        'upload-metadata': Object.entries(metadata)
          .map(([key, value]) => `${key} ${base64(value)}`)
          .join(','),
      }),
    })
    const location = response.header('location')
    if (response.status !== 201 || !location) throw refusal(response, 'POST')
    return new URL(location, new URL(endpoint, globalThis.location?.href)).href
  }

  let url: string | undefined
  try {
    url = store?.getItem(fingerprint) ?? undefined
    let offset = url === undefined ? undefined : await offsetAt(url)
    if (url === undefined || offset === undefined) {
      url = await create()
      offset = 0
      try {
        store?.setItem(fingerprint, url)
      } catch {
        // storage full: this upload resumes within this call, not after a reload
      }
    }
    const resumedFrom = offset
    options.onProgress?.({ loaded: offset, total: size })
    while (offset < size) {
      const from: number = offset
      const response = await send({
        method: 'PATCH',
        url,
        headers: headers({
          'upload-offset': String(from),
          'content-type': 'application/offset+octet-stream',
        }),
        body: file.slice(from, Math.min(size, from + chunkSize)),
        onSent: (bytes) => options.onProgress?.({ loaded: from + bytes, total: size }),
      })
      // A drop, a cut body (408), a wrong offset (409), the server's trouble: wait, then go on from
      // what the server has (it keeps the bytes of a cut PATCH).
      if (response instanceof FlumenClientError) await backOff(response)
      else if (response.status === 204) {
        const next = Number(response.header('upload-offset'))
        if (!Number.isSafeInteger(next) || next <= from || next > size) throw refusal(response, 'PATCH')
        offset = next
        failures = 0
        continue
      } else if (passing(response.status)) await backOff(refusal(response, 'PATCH'))
      else {
        if (response.status === 404 || response.status === 410) store?.removeItem(fingerprint)
        throw refusal(response, 'PATCH')
      }
      const known = await offsetAt(url)
      if (known === undefined) {
        store?.removeItem(fingerprint)
        throw new FlumenClientError('HTTP_ERROR', 'The server no longer has this upload', { status: 404 })
      }
      if (known > from) failures = 0
      offset = known
    }
    store?.removeItem(fingerprint)
    return { url, size, resumedFrom }
  } catch (err) {
    // Only the caller's abort ends the upload for good; anything else leaves it to resume.
    if (signal.aborted) {
      if (options.removeOnAbort !== false) {
        store?.removeItem(fingerprint)
        if (url !== undefined) await terminate(transport, url, headers({}))
      }
      throw new FlumenClientError('ABORTED', 'Upload aborted')
    }
    throw err
  }
}
