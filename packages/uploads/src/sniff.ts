/** Bytes needed to recognise every signature below. */
export const sniffBytes = 16

interface Signature {
  readonly type: string
  readonly offset: number
  readonly bytes: readonly number[]
}

const ascii = (text: string): number[] => [...text].map((char) => char.charCodeAt(0))

// Well-known file signatures ("magic numbers"). The declared Content-Type is the client's word;
// these are the file's own.
const signatures: readonly Signature[] = [
  { type: 'image/png', offset: 0, bytes: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
  { type: 'image/jpeg', offset: 0, bytes: [0xff, 0xd8, 0xff] },
  { type: 'image/gif', offset: 0, bytes: ascii('GIF8') },
  { type: 'image/webp', offset: 8, bytes: ascii('WEBP') },
  { type: 'image/avif', offset: 4, bytes: ascii('ftypavif') },
  { type: 'video/mp4', offset: 4, bytes: ascii('ftyp') },
  { type: 'application/pdf', offset: 0, bytes: ascii('%PDF-') },
  { type: 'application/zip', offset: 0, bytes: [0x50, 0x4b, 0x03, 0x04] },
  { type: 'application/gzip', offset: 0, bytes: [0x1f, 0x8b] },
  { type: 'audio/mpeg', offset: 0, bytes: ascii('ID3') },
  { type: 'audio/ogg', offset: 0, bytes: ascii('OggS') },
  { type: 'audio/wav', offset: 8, bytes: ascii('WAVE') },
]

const matches = (head: Uint8Array, { offset, bytes }: Signature): boolean =>
  head.length >= offset + bytes.length && bytes.every((byte, i) => head[offset + i] === byte)

/**
 * The type a file's first bytes show, `text/plain` for UTF-8 text without control characters,
 * or `application/octet-stream` when nothing is recognised.
 */
export const sniffType = (head: Uint8Array): string => {
  for (const signature of signatures) if (matches(head, signature)) return signature.type
  if (head.length > 0 && isText(head)) return 'text/plain'
  return 'application/octet-stream'
}

/**
 * The type to record for a file: a recognised signature wins over what the client declared;
 * plain text or unknown bytes keep a well-formed declared type.
 */
export const fileType = (sniffed: string, declared: string | undefined): string =>
  sniffed !== 'text/plain' && sniffed !== 'application/octet-stream'
    ? sniffed
    : declared && /^[\w.+-]+\/[\w.+-]+$/.test(declared)
      ? declared
      : sniffed

const isText = (head: Uint8Array): boolean => {
  for (const byte of head) if (byte < 0x09 || (byte > 0x0d && byte < 0x20) || byte === 0x7f) return false
  // A multi-byte character may be cut at the end of the sample: ignore up to 3 trailing bytes.
  return new TextDecoder('utf-8', { fatal: false }).decode(head).slice(0, -1).includes('\ufffd') === false
}
