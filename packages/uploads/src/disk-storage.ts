import { randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { PartialUpload, ResumableStore, StoredFile } from './storage.js'
import { isStorageId } from './storage.js'

/**
 * Bytes a file's write stream takes before it asks the upload to wait. Node's 16 KiB is less than
 * one socket read (64 KiB): every chunk would pause and resume the request, and each write would
 * go alone to the disk; with 256 KiB the chunks that arrive while one write runs go in the next
 * write together (writev).
 */
const writeBufferBytes = 256 * 1024

export interface DiskStorageOptions {
  /** Directory of the stored files; created if missing. Partial files live in `.partial/` and `.tus/` inside it. */
  dir: string
}

/**
 * Files on disk: each upload goes to `dir/.partial/<random>` and is renamed to `dir/<id>` when
 * complete (same filesystem, so the rename is atomic); `dir/<id>.json` holds its record.
 */
export const diskStorage = (options: DiskStorageOptions): ResumableStore & { readonly dir: string } => {
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
      const stream = createWriteStream(temp, { flags: 'wx', highWaterMark: writeBufferBytes })
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
      return createWriteStream('', { fd: handle, start: offset, highWaterMark: writeBufferBytes })
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
