import { FlumenClientError } from './errors.js'
import type { UploadOptions, UploadResponse } from './upload.js'
import { parseBody } from './upload.js'

/** Uploads a Blob/File with XMLHttpRequest (the one browser API with upload progress). */
export const uploadFile = (
  url: string,
  file: Blob & { name?: string },
  options: UploadOptions = {},
): Promise<UploadResponse> =>
  new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new FlumenClientError('ABORTED', 'Upload aborted'))
      return
    }
    const form = new FormData()
    for (const [name, value] of Object.entries(options.fields ?? {})) form.append(name, value)
    form.append(options.field ?? 'file', file, file.name ?? 'file')
    const xhr = new XMLHttpRequest()
    xhr.open('POST', url)
    xhr.withCredentials = true
    for (const [name, value] of Object.entries(options.headers ?? {})) xhr.setRequestHeader(name, value)
    xhr.upload.onprogress = (event) =>
      options.onProgress?.({ loaded: event.loaded, total: event.lengthComputable ? event.total : undefined })
    const onAbort = (): void => xhr.abort()
    options.signal?.addEventListener('abort', onAbort, { once: true })
    xhr.onload = () => {
      options.signal?.removeEventListener('abort', onAbort)
      resolve({ status: xhr.status, body: parseBody(xhr.responseText) })
    }
    xhr.onerror = () => {
      options.signal?.removeEventListener('abort', onAbort)
      reject(new FlumenClientError('CONNECTION_REFUSED', 'The upload failed (network)'))
    }
    xhr.onabort = () => reject(new FlumenClientError('ABORTED', 'Upload aborted'))
    xhr.send(form)
  })
