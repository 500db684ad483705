// biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
const controlCharacters = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g

/**
 * A client file name made safe to show: the last path segment (either slash), no control or
 * bidi-override characters, NFC, at most `maxLength` characters, never empty or a dot name.
 * It is never used as a path: files are stored under server ids.
 */
export const displayName = (raw: string, maxLength = 255): string => {
  const lastSegment = raw.split(/[\\/]/).pop() ?? ''
  const cleaned = lastSegment.normalize('NFC').replace(controlCharacters, '').trim()
  const name = cleaned === '.' || cleaned === '..' ? '' : cleaned
  return [...name].slice(0, maxLength).join('') || 'file'
}
