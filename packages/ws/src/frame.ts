// Server-to-client WebSocket frames (RFC 6455 §5.2): unmasked, so the same bytes can be
// written to every socket that receives a message; compressed ones (RFC 7692) too, when every
// message is compressed on its own (server_no_context_takeover).
import { constants, deflateRawSync } from 'node:zlib'
import type { PreparedFrame } from '@flumen/core'

const writeHeader = (frame: Buffer, length: number, binary: boolean): number => {
  frame[0] = binary ? 0x82 : 0x81
  if (length < 126) {
    frame[1] = length
  } else if (length < 65536) {
    frame[1] = 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 127
    frame.writeBigUInt64BE(BigInt(length), 2)
  }
  return headerLength(length)
}

const headerLength = (length: number): number => (length < 126 ? 2 : length < 65536 ? 4 : 10)

/** Frames a complete text (opcode 1) or binary (opcode 2) message. */
export const encodeFrame = (payload: Buffer, binary: boolean): Buffer => {
  const frame = Buffer.allocUnsafe(headerLength(payload.length) + payload.length)
  payload.copy(frame, writeHeader(frame, payload.length, binary))
  return frame
}

/** Frames a text message straight from a string: one allocation, UTF-8 encoded in place. */
export const encodeTextFrame = (text: string): Buffer => {
  const length = Buffer.byteLength(text)
  const frame = Buffer.allocUnsafe(headerLength(length) + length)
  const offset = writeHeader(frame, length, false)
  // As many UTF-8 bytes as code units means every one is ASCII, whose Latin-1 bytes are the same:
  // a plain copy, where V8's UTF-8 writer costs about 700 instructions for 64 characters.
  if (length === text.length) frame.write(text, offset, 'latin1')
  else frame.write(text, offset)
  return frame
}

const syncFlush = { finishFlush: constants.Z_SYNC_FLUSH }

/**
 * Frames a message compressed with permessage-deflate, as a message of its own (no context kept
 * between messages): the same bytes inflate for every peer that negotiated
 * server_no_context_takeover with the full window.
 */
export const encodeDeflatedFrame = (payload: Buffer, binary: boolean): Buffer => {
  const flushed = deflateRawSync(payload, syncFlush)
  // RFC 7692 §7.2.1: the 0x00 0x00 0xff 0xff tail of the sync flush is left off.
  const compressed = flushed.subarray(0, flushed.length - 4)
  const frame = encodeFrame(compressed, binary)
  frame[0]! |= 0x40 // RSV1: this message is compressed
  return frame
}

export const toBuffer = (data: string | Uint8Array): Buffer =>
  typeof data === 'string' ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.byteLength)

/** The frame's bytes on the wire, built by the first WebSocket peer that sends it. */
export const wsWire = (frame: PreparedFrame): Buffer => {
  frame.wire.ws ??= frame.parts
    ? Buffer.concat(frame.parts.map(wsWire))
    : typeof frame.data === 'string' && !frame.binary
      ? encodeTextFrame(frame.data)
      : encodeFrame(toBuffer(frame.data), frame.binary)
  return frame.wire.ws
}

/**
 * The frame's bytes for peers with permessage-deflate: each message of at least `threshold` bytes
 * compressed once (by the first such peer) and written as is to all of them, smaller ones plain.
 */
export const deflatedWire = (frame: PreparedFrame, threshold: number): Buffer => {
  frame.wire.wsDeflate ??= frame.parts
    ? Buffer.concat(frame.parts.map((part) => deflatedWire(part, threshold)))
    : (typeof frame.data === 'string' ? Buffer.byteLength(frame.data) : frame.data.byteLength) < threshold
      ? wsWire(frame)
      : encodeDeflatedFrame(toBuffer(frame.data), frame.binary)
  return frame.wire.wsDeflate
}
