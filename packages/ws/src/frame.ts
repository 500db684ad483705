// Server-to-client WebSocket frames (RFC 6455 §5.2): unmasked, so the same bytes can be
// written to every socket that receives a message.

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
  frame.write(text, writeHeader(frame, length, false))
  return frame
}
