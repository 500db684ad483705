import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'
import { FlumenError } from '@flumen/core'
import { fileType, sniffBytes, sniffType } from './sniff.js'
import type { FileSink, StoredFile } from './storage.js'

/** A file as it starts arriving. */
export interface IncomingFile {
  readonly id: string
  readonly field: string
  /** Sanitized display name. */
  readonly name: string
  /** The client's Content-Type, checked against the bytes. */
  readonly declaredType: string
}

export interface FileWriterOptions {
  /** Bytes accepted; one more rejects with TOO_LARGE. */
  readonly maxBytes: number
  /** Types (by magic bytes) accepted; others reject with UNSUPPORTED_MEDIA_TYPE. */
  readonly allowedTypes: ReadonlySet<string> | undefined
  /** Called after each chunk handed to the sink, with the file's bytes so far. */
  readonly onProgress?: (bytes: number) => void
}

const storageFailed = (cause: unknown): FlumenError =>
  new FlumenError('INTERNAL', 'Storage failed', { cause })

/**
 * Streams one file into a sink: its first bytes are held until its type can be recognised (and
 * checked), every byte is hashed (SHA-256), a full sink pauses the source as pipe() does (one
 * drain listener), and the sink is committed once the source ended. Resolves with the stored
 * file; rejects with a FlumenError and leaves the sink to the caller, who aborts it. The caller
 * also owns the source: a source destroyed before its end rejects.
 */
export const writeFile = (
  source: Readable,
  sink: FileSink,
  file: IncomingFile,
  options: FileWriterOptions,
): Promise<StoredFile> =>
  new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    let size = 0
    let type = fileType('application/octet-stream', file.declaredType)
    let held: Buffer | undefined = Buffer.alloc(0)
    let ending = false
    let over = false

    const finish = (error: FlumenError | undefined, stored?: StoredFile): void => {
      if (over) return
      over = true
      source.off('data', onData)
      source.off('end', onEnd)
      source.off('close', onClose)
      sink.stream.off('drain', onDrain)
      if (error) reject(error)
      else resolve(stored!)
    }

    const write = (chunk: Buffer): void => {
      hash.update(chunk)
      if (!sink.stream.write(chunk)) source.pause()
    }

    /** Ends the sniffing hold: checks the type and writes what was held. */
    const release = (): boolean => {
      const bytes = held!
      held = undefined
      const sniffed = sniffType(bytes)
      if (options.allowedTypes && !options.allowedTypes.has(sniffed)) {
        finish(new FlumenError('UNSUPPORTED_MEDIA_TYPE', `File ${file.name} is not an allowed type`))
        return false
      }
      // With an allow-list the checked type is the one recorded.
      type = options.allowedTypes ? sniffed : fileType(sniffed, file.declaredType)
      if (bytes.length > 0) write(bytes)
      return true
    }

    const onData = (chunk: Buffer): void => {
      if (over) return
      size += chunk.length
      if (size > options.maxBytes) {
        finish(new FlumenError('TOO_LARGE', `File ${file.name} is larger than ${options.maxBytes} bytes`))
        return
      }
      if (held !== undefined) {
        held = held.length === 0 ? chunk : Buffer.concat([held, chunk])
        if (held.length >= sniffBytes) release()
        return
      }
      write(chunk)
      options.onProgress?.(size)
    }

    const onEnd = (): void => {
      if (over || (held !== undefined && !release())) return
      ending = true
      sink.stream.end((err?: Error | null) => {
        if (over) return
        if (err || sink.stream.errored) return finish(storageFailed(err ?? sink.stream.errored))
        const stored: StoredFile = {
          id: file.id,
          field: file.field,
          name: file.name,
          size,
          type,
          sha256: hash.digest('hex'),
        }
        sink.commit(stored).then(
          () => finish(undefined, stored),
          (cause: unknown) => finish(storageFailed(cause)),
        )
      })
    }

    const onClose = (): void => {
      if (!ending) finish(new FlumenError('BAD_REQUEST', `File ${file.name} ended before its end`))
    }
    const onDrain = (): void => {
      source.resume()
    }
    const onSinkError = (err: Error): void => finish(storageFailed(err))

    sink.stream.on('drain', onDrain)
    // Kept after the end: an error of a sink being aborted must not go unhandled.
    sink.stream.on('error', onSinkError)
    source.on('data', onData)
    source.once('end', onEnd)
    source.once('close', onClose)
    source.resume()
  })
