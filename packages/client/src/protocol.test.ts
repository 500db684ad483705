import { protocolName as serverProtocolName } from '@flumen/broadcast'
import { errorCodes } from '@flumen/core'
import { describe, expect, it } from 'vitest'
import { covers, protocolName, publishKey, serverErrorCode } from './protocol.js'

// The client keeps its own copy of the protocol's names (it imports nothing of the server): these
// tests fail when the two drift apart.
describe('the client protocol module', () => {
  it('speaks the subprotocol the hub speaks', () => {
    expect(protocolName).toBe(serverProtocolName)
  })

  it('knows every error code the server sends, and maps one it does not know to INTERNAL', () => {
    for (const code of Object.keys(errorCodes)) expect(serverErrorCode(code)).toBe(code)
    expect(serverErrorCode('SOMETHING_NEW')).toBe('INTERNAL')
    expect(serverErrorCode(42)).toBe('INTERNAL')
  })

  it('makes publish keys the server accepts, each different', () => {
    const keys = new Set(Array.from({ length: 1000 }, publishKey))
    expect(keys.size).toBe(1000)
    for (const key of keys) expect(key).toMatch(/^[A-Za-z0-9_-]{22}$/)
  })

  it('knows when a position already covers a message', () => {
    expect(covers({ epoch: 'a', offset: 5 }, { epoch: 'a', offset: 5 })).toBe(true)
    expect(covers({ epoch: 'a', offset: 5 }, { epoch: 'a', offset: 6 })).toBe(false)
    expect(covers({ epoch: 'a', offset: 5 }, { epoch: 'b', offset: 1 })).toBe(false)
  })
})
