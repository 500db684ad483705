import { PassThrough, Writable } from 'node:stream'
import { positiveInteger } from '@flumen/core'
import type { PartialUpload, ResumableStore, StoredFile } from './storage.js'

export interface MemoryStorageOptions {
  /**
   * Bytes held across all files (complete and partial); a write past it fails.
   * @default 67108864 (64 MiB)
   */
  maxBytes?: number
}

/** Files in memory, for tests and small files. Content is lost with the process. */
export const memoryStorage = (
  options: MemoryStorageOptions = {},
): ResumableStore & { readonly bytes: number } => {
  const maxBytes = options.maxBytes ?? 64 * 1024 * 1024
  positiveInteger('memoryStorage', 'maxBytes', maxBytes)
  const files = new Map<string, { file: StoredFile; chunks: Buffer[] }>()
  const partials = new Map<string, { upload: PartialUpload; chunks: Buffer[]; size: number }>()
  let bytes = 0
  const reserve = (size: number): void => {
    if (bytes + size > maxBytes) throw new Error('memoryStorage: maxBytes reached')
    bytes += size
  }
  const collector = (onChunk: (chunk: Buffer) => void): Writable =>
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        try {
          reserve(chunk.length)
          onChunk(chunk)
          callback()
        } catch (err) {
          callback(err as Error)
        }
      },
    })
  return {
    get bytes() {
      return bytes
    },
    async create() {
      const chunks: Buffer[] = []
      let held = 0
      const stream = collector((chunk) => {
        chunks.push(chunk)
        held += chunk.length
      })
      return {
        stream,
        async commit(file) {
          files.set(file.id, { file, chunks })
        },
        async abort() {
          stream.destroy()
          bytes -= held
          held = 0
          chunks.length = 0
        },
      }
    },
    async info(id) {
      return files.get(id)?.file
    },
    async read(id, range) {
      const entry = files.get(id)
      if (!entry) return undefined
      const content = Buffer.concat(entry.chunks)
      const stream = new PassThrough()
      stream.end(range ? content.subarray(range.start, range.end + 1) : content)
      return stream
    },
    async remove(id) {
      const entry = files.get(id)
      if (!entry) return
      files.delete(id)
      bytes -= entry.file.size
    },
    async createPartial(upload) {
      partials.set(upload.id, { upload, chunks: [], size: 0 })
    },
    async partial(id) {
      const entry = partials.get(id)
      return entry && { upload: entry.upload, offset: entry.size }
    },
    async append(id, offset) {
      const entry = partials.get(id)
      if (!entry || entry.size !== offset) throw new Error('memoryStorage: offset mismatch')
      return collector((chunk) => {
        entry.chunks.push(chunk)
        entry.size += chunk.length
      })
    },
    async truncatePartial(id, offset) {
      const entry = partials.get(id)
      if (!entry) return
      const all = Buffer.concat(entry.chunks)
      bytes -= entry.size - offset
      entry.chunks = [all.subarray(0, offset)]
      entry.size = offset
    },
    async readPartial(id) {
      const stream = new PassThrough()
      stream.end(Buffer.concat(partials.get(id)?.chunks ?? []))
      return stream
    },
    async completePartial(id, file) {
      const entry = partials.get(id)
      if (!entry) throw new Error('memoryStorage: unknown upload')
      partials.delete(id)
      files.set(file.id, { file, chunks: entry.chunks })
    },
    async removePartial(id) {
      const entry = partials.get(id)
      if (!entry) return
      partials.delete(id)
      bytes -= entry.size
    },
    async listPartials() {
      return [...partials.keys()]
    },
  }
}
