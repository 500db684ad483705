// Server-to-client WebSocket frames (RFC 6455 §5.2): unmasked, so the same bytes can be
// written to every socket that receives a message.

/** Frames a complete text (opcode 1) or binary (opcode 2) message. */
export const encodeFrame = (payload: Buffer, binary: boolean): Buffer => {
  const length = payload.length
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10
  const frame = Buffer.allocUnsafe(headerLength + length)
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
  payload.copy(frame, headerLength)
  return frame
}
