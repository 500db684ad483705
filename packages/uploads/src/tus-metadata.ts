// tus Upload-Metadata: comma-separated `key base64value` pairs, the value optional.

/** Upload-Metadata: comma-separated `key base64value` pairs (value optional). */
export const parseMetadata = (header: string | undefined): Record<string, string> | undefined => {
  const metadata: Record<string, string> = Object.create(null)
  if (header === undefined || header.trim() === '') return metadata
  for (const pair of header.split(',')) {
    const [key, value, extra] = pair.trim().split(' ')
    if (!key || extra !== undefined || !/^[\x21-\x7e]+$/.test(key) || key in metadata) return undefined
    if (value !== undefined && !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) return undefined
    metadata[key] = value === undefined ? '' : Buffer.from(value, 'base64').toString('utf8')
  }
  return metadata
}

export const encodeMetadata = (metadata: Record<string, string>): string =>
  Object.entries(metadata)
    .map(([key, value]) => (value === '' ? key : `${key} ${Buffer.from(value).toString('base64')}`))
    .join(',')
