// The storage contracts: a file store (what uploads() and download() need) and a resumable store
// that extends it (what tus() needs), so a plain object store need not implement tus.
import type { Readable, Writable } from 'node:stream'

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
 * Where stored files live: what `uploads()` writes and `download()` reads. An S3-style store maps
 * `create` to a multipart upload (parts streamed as they fill, completed in `commit`, aborted in
 * `abort`), and `read`/`info`/`remove` to GET (with Range)/HEAD/DELETE of the object.
 */
export interface FileStore {
  create(file: NewFile): Promise<FileSink>
  /** The stored file's record, or undefined. */
  info(id: string): Promise<StoredFile | undefined>
  /** The content of a stored file (or the bytes of `range`), or undefined. */
  read(id: string, range?: ByteRange): Promise<Readable | undefined>
  remove(id: string): Promise<void>
}

/**
 * A file store that also keeps resumable (tus) uploads while they arrive, which `tus()` needs. In an
 * S3-style store: an object per upload plus its uploaded parts.
 */
export interface ResumableStore extends FileStore {
  /** Records a new resumable upload with no bytes yet. */
  createPartial(upload: PartialUpload): Promise<void>
  /** The upload and the bytes stored so far, or undefined. */
  partial(id: string): Promise<{ upload: PartialUpload; offset: number } | undefined>
  /** A stream appending at `offset` (the current size). */
  append(id: string, offset: number): Promise<Writable>
  /** Cuts the stored bytes back to `offset` (a chunk that failed its checksum). */
  truncatePartial(id: string, offset: number): Promise<void>
  /** The stored bytes of a partial upload, to hash it once complete. */
  readPartial(id: string): Promise<Readable>
  /** Turns a complete partial upload into a stored file. */
  completePartial(id: string, file: StoredFile): Promise<void>
  removePartial(id: string): Promise<void>
  /** Ids of partial uploads (for expiry sweeps). */
  listPartials(): Promise<string[]>
}

const idPattern = /^[A-Za-z0-9_-]{1,64}$/
/** Ids come from the server, but they come back in URLs: refuse anything that is not one. */
export const isStorageId = (id: string): boolean => idPattern.test(id)
