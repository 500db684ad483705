export type { DownloadOptions } from './download.js'
export { download, parseRange } from './download.js'
export type {
  ProgressOptions,
  ProgressPublisher,
  UploadEvent,
  UploadLimits,
  UploadResult,
  UploadStats,
  UploadsOptions,
  UploadsRoute,
} from './multipart.js'
export { uploads } from './multipart.js'
export { displayName } from './names.js'
export { sniffType } from './sniff.js'
export type {
  ByteRange,
  DiskStorageOptions,
  FileSink,
  MemoryStorageOptions,
  NewFile,
  PartialUpload,
  StorageAdapter,
  StoredFile,
} from './storage.js'
export { diskStorage, isStorageId, memoryStorage } from './storage.js'
export type { TusOptions } from './tus.js'
export { tus } from './tus.js'
