// The requests of a resumable upload on each platform: XMLHttpRequest in browsers (the one API that
// reports upload progress, and sends the page's cookies), fetch elsewhere (progress per chunk).
import { FlumenClientError } from './errors.js'
import type { TusRequest, TusResponse, TusTransport } from './resumable.js'

export const xhrTransport: TusTransport = (request: TusRequest): Promise<TusResponse> =>
  new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest()
    xhr.open(request.method, request.url)
    xhr.withCredentials = true
    for (const [name, value] of Object.entries(request.headers)) xhr.setRequestHeader(name, value)
    if (request.onSent) {
      const onSent = request.onSent
      xhr.upload.onprogress = (event) => onSent(event.loaded)
    }
    const onAbort = (): void => xhr.abort()
    request.signal.addEventListener('abort', onAbort, { once: true })
    const done = (): void => request.signal.removeEventListener('abort', onAbort)
    xhr.onload = () => {
      done()
      resolve({ status: xhr.status, header: (name) => xhr.getResponseHeader(name), text: xhr.responseText })
    }
    xhr.onerror = () => {
      done()
      reject(new FlumenClientError('CONNECTION_REFUSED', 'The upload failed (network)'))
    }
    xhr.onabort = () => {
      done()
      // Not our signal: the page is going away (a reload). The upload must stay resumable.
      reject(
        request.signal.aborted
          ? new FlumenClientError('ABORTED', 'Upload aborted')
          : new FlumenClientError('CONNECTION_REFUSED', 'The upload was interrupted'),
      )
    }
    xhr.send(request.body ?? null)
  })

export const fetchTransport = async (request: TusRequest): Promise<TusResponse> => {
  let response: Response
  try {
    response = await fetch(request.url, {
      method: request.method,
      headers: request.headers,
      ...(request.body && { body: request.body }),
      signal: request.signal,
    })
  } catch (err) {
    if (request.signal.aborted) throw new FlumenClientError('ABORTED', 'Upload aborted')
    throw new FlumenClientError('CONNECTION_REFUSED', 'The upload failed (network)', { cause: err })
  }
  const text = await response.text().catch(() => '')
  if (request.body) request.onSent?.(request.body.size)
  return { status: response.status, header: (name) => response.headers.get(name), text }
}
