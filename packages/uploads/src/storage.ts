import { randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough, type Readable, Writable } from 'node:stream'

/** What the server knows of a stored file; `name` is for display only, never a path. */
export interface StoredFile {
  /** Server-generated id (URL-safe); the only thing that names the file in storage. */
  id: string
  /** The form field the file came in. */
  field: string
  /** The client's file name, sanitized, for display only. */
  name: string
  size: number
  /** The type found by magic bytes when known, else the declared Content-Type. */
  type: string
  /** Hex SHA-256 of the content, computed while streaming. */
  sha256: string
  /** Who uploaded it, for stores that bind files to their owner (tus). */
  owner?: string
}

/** Bytes `start` to `end` of a file, both included (as in `Range: bytes=start-end`). */
export interface ByteRange {
  readonly start: number
  readonly end: number
}

/** The new file as it starts streaming in. */
export type NewFile = Omit<StoredFile, 'size' | 'sha256' | 'owner'>

/**
 * One file being written. `stream` receives the bytes in order, with backpressure; then either
 * `commit` (after the stream finished) makes the file visible atomically, or `abort` removes
 * every trace of it.
 */
export interface FileSink {
  readonly stream: Writable
  commit(file: StoredFile): Promise<void>
  abort(): Promise<void>
}

/** A resumable (tus) upload in progress. */
export interface PartialUpload {
  id: string
  /** Total size the client announced. */
  length: number
  /** The tus Upload-Metadata, decoded. */
  metadata: Record<string, string>
  /** Milliseconds since the epoch after which it is removed. */
  expiresAt: number
  /** Who created it: only the same owner can continue, inspect or delete it. */
  owner?: string
}

/**
 * Where uploads go. `diskStorage` and `memoryStorage` implement it; an S3-style store maps
 * `create` to a multipart upload (parts streamed as they fill, completed in `commit`, aborted in
 * `abort`), `read`/`info`/`remove` to GET/HEAD/DELETE of the object, and the partial methods to
 * an object per upload plus its uploaded parts.
 */
export interface StorageAdapter {
  create(file: NewFile): Promise<FileSink>
  /** The stored file's record, or undefined. */
  info(id: string): Promise<StoredFile | undefined>
  /** The content of a stored file (or the bytes of `range`), or undefined. */
  read(id: string, range?: ByteRange): Promise<Readable | undefined>
  remove(id: string): Promise<void>

  /** tus: records a new resumable upload with no bytes yet. */
  createPartial(upload: PartialUpload): Promise<void>
  /** tus: the upload and the bytes stored so far, or undefined. */
  partial(id: string): Promise<{ upload: PartialUpload; offset: number } | undefined>
  /** tus: a stream appending at `offset` (the current size). */
  append(id: string, offset: number): Promise<Writable>
  /** tus: cuts the stored bytes back to `offset` (a chunk that failed its checksum). */
  truncatePartial(id: string, offset: number): Promise<void>
  /** tus: the stored bytes of a partial upload, to hash it once complete. */
  readPartial(id: string): Promise<Readable>
  /** tus: turns a complete partial upload into a stored file. */
  completePartial(id: string, file: StoredFile): Promise<void>
  removePartial(id: string): Promise<void>
  /** tus: ids of partial uploads (for expiry sweeps). */
  listPartials(): Promise<string[]>
}

const idPattern = /^[A-Za-z0-9_-]{1,64}$/
/** Ids come from the server, but they come back in URLs: refuse anything that is not one. */
export const isStorageId = (id: string): boolean => idPattern.test(id)

export interface DiskStorageOptions {
  /** Directory of the stored files; created if missing. Partial files live in `.partial/` and `.tus/` inside it. */
  dir: string
}

/**
 * Files on disk: each upload goes to `dir/.partial/<random>` and is renamed to `dir/<id>` when
 * complete (same filesystem, so the rename is atomic); `dir/<id>.json` holds its record.
 */
export const diskStorage = (options: DiskStorageOptions): StorageAdapter & { readonly dir: string } => {
  if (typeof options?.dir !== 'string' || options.dir.length === 0)
    throw new Error('diskStorage: dir must be a directory path')
  const dir = options.dir
  const partialDir = join(dir, '.partial')
  const tusDir = join(dir, '.tus')
  let ready: Promise<void> | undefined
  const ensureDirs = (): Promise<void> => {
    ready ??= Promise.all([mkdir(partialDir, { recursive: true }), mkdir(tusDir, { recursive: true })]).then(
      () => undefined,
    )
    return ready
  }
  const path = (id: string): string => {
    if (!isStorageId(id)) throw new Error('diskStorage: invalid id')
    return join(dir, id)
  }
  const tusPath = (id: string): string => {
    if (!isStorageId(id)) throw new Error('diskStorage: invalid id')
    return join(tusDir, id)
  }
  const writeRecord = (file: StoredFile): Promise<void> =>
    writeFile(`${path(file.id)}.json`, JSON.stringify(file))
  const readJson = async <T>(file: string): Promise<T | undefined> => {
    try {
      return JSON.parse(await readFile(file, 'utf8')) as T
    } catch {
      return undefined
    }
  }

  return {
    dir,
    async create(file) {
      await ensureDirs()
      const temp = join(partialDir, `${file.id}-${randomBytes(6).toString('hex')}`)
      const stream = createWriteStream(temp, { flags: 'wx' })
      let removed = false
      return {
        stream,
        async commit(stored) {
          await writeRecord(stored)
          await rename(temp, path(stored.id))
        },
        async abort() {
          if (removed) return
          removed = true
          if (!stream.closed) {
            stream.destroy()
            await new Promise<void>((resolve) => stream.once('close', () => resolve()))
          }
          await rm(temp, { force: true })
          await rm(`${path(file.id)}.json`, { force: true })
        },
      }
    },
    async info(id) {
      if (!isStorageId(id)) return undefined
      return readJson<StoredFile>(`${path(id)}.json`)
    },
    async read(id, range) {
      if (!isStorageId(id)) return undefined
      try {
        await stat(path(id))
      } catch {
        return undefined
      }
      return createReadStream(path(id), range && { start: range.start, end: range.end })
    },
    async remove(id) {
      if (!isStorageId(id)) return
      await rm(path(id), { force: true })
      await rm(`${path(id)}.json`, { force: true })
    },
    async createPartial(upload) {
      await ensureDirs()
      await writeFile(`${tusPath(upload.id)}.json`, JSON.stringify(upload))
      await writeFile(tusPath(upload.id), '', { flag: 'wx' })
    },
    async partial(id) {
      if (!isStorageId(id)) return undefined
      const upload = await readJson<PartialUpload>(`${tusPath(id)}.json`)
      if (!upload) return undefined
      try {
        return { upload, offset: (await stat(tusPath(id))).size }
      } catch {
        return undefined
      }
    },
    async append(id, offset) {
      // r+ at an explicit position: a stale writer can never append past what it was told.
      const handle = await open(tusPath(id), 'r+')
      return createWriteStream('', { fd: handle, start: offset })
    },
    async truncatePartial(id, offset) {
      await truncate(tusPath(id), offset)
    },
    async readPartial(id) {
      return createReadStream(tusPath(id))
    },
    async completePartial(id, file) {
      await writeRecord(file)
      await rename(tusPath(id), path(file.id))
      await rm(`${tusPath(id)}.json`, { force: true })
    },
    async removePartial(id) {
      if (!isStorageId(id)) return
      await rm(tusPath(id), { force: true })
      await rm(`${tusPath(id)}.json`, { force: true })
    },
    async listPartials() {
      await ensureDirs()
      return (await readdir(tusDir)).filter((name) => !name.endsWith('.json'))
    },
  }
}

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
): StorageAdapter & { readonly bytes: number } => {
  const maxBytes = options.maxBytes ?? 64 * 1024 * 1024
  if (!Number.isInteger(maxBytes) || maxBytes < 1)
    throw new Error('memoryStorage: maxBytes must be a positive integer')
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
