export type { DiskStorageOptions } from './disk-storage.js'
export { diskStorage } from './disk-storage.js'
export type { DownloadOptions } from './download.js'
export { download, parseRange } from './download.js'
export type { MemoryStorageOptions } from './memory-storage.js'
export { memoryStorage } from './memory-storage.js'
export type { UploadStats, UploadsRoute } from './multipart.js'
export { uploads } from './multipart.js'
export { displayName } from './names.js'
export type { ProgressOptions, ProgressPublisher, UploadEvent } from './progress.js'
export { sniffType } from './sniff.js'
export type {
  ByteRange,
  FileSink,
  FileStore,
  NewFile,
  PartialUpload,
  ResumableStore,
  StoredFile,
} from './storage.js'
export { isStorageId } from './storage.js'
export type { TusApp } from './tus.js'
export { tus } from './tus.js'
export type { TusOptions } from './tus-options.js'
export type { UploadLimits, UploadResult, UploadsOptions } from './uploads-options.js'
export { uploadLimitDefaults } from './uploads-options.js'
