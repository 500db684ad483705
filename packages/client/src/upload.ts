/** Progress of an upload: request body bytes sent, of `total` when known. */
export interface UploadProgress {
  loaded: number
  total: number | undefined
}

export interface UploadResponse {
  status: number
  /** The parsed JSON answer (or the text when it is not JSON). */
  body: unknown
}

export interface UploadOptions {
  /** @default 'file' */
  field?: string
  /** Text fields sent before the file. */
  fields?: Record<string, string>
  headers?: Record<string, string>
  /** Called as the body goes out (throttled by the platform). */
  onProgress?: (progress: UploadProgress) => void
  /** Aborts the upload: the promise rejects with ABORTED. */
  signal?: AbortSignal
}

export const parseBody = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}
