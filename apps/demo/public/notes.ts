// A room's shared notes: a textarea bound to the Y.Text of the room's Yjs document (`room-<name>`),
// with who is editing it from the document's awareness. Local typing becomes the smallest edit of the
// text; edits from others keep the caret where it was in the text around it.
import type { Client } from '@flumen/client'
import type { YjsProvider } from '@flumen/yjs/provider'
import { yjsProvider } from '@flumen/yjs/provider'
import * as Y from 'yjs'

/** The notes of one room on the page; `close()` before opening another room's. */
export interface RoomNotes {
  close(): void
}

/** Where an offset moves when `delta` (a Y.Text change) is applied before it. */
const moved = (offset: number, delta: Y.YTextEvent['delta']): number => {
  let index = 0
  let result = offset
  for (const op of delta) {
    if (op.retain !== undefined) index += op.retain
    else if (typeof op.insert === 'string') {
      if (index < offset) result += op.insert.length
    } else if (op.delete !== undefined) {
      if (index < offset) result -= Math.min(op.delete, offset - index)
      index += op.delete
    }
  }
  return result
}

export const openNotes = (
  // biome-ignore lint/suspicious/noExplicitAny: the page's client has the app's contract; notes are not in it
  client: Client<any>,
  room: string,
  me: { id: string; name: string },
  area: HTMLTextAreaElement,
  who: HTMLElement,
): RoomNotes => {
  const doc = new Y.Doc()
  const text = doc.getText('notes')
  const provider: YjsProvider = yjsProvider(client, `room-${room}`, doc)
  const typing = Symbol('typing')
  area.value = ''
  area.disabled = true
  area.placeholder = 'Loading the notes…'

  const onInput = (): void => {
    const before = text.toString()
    const after = area.value
    let start = 0
    while (start < before.length && start < after.length && before[start] === after[start]) start++
    let end = 0
    while (
      end < before.length - start &&
      end < after.length - start &&
      before[before.length - 1 - end] === after[after.length - 1 - end]
    )
      end++
    doc.transact(() => {
      const removed = before.length - start - end
      if (removed > 0) text.delete(start, removed)
      const inserted = after.slice(start, after.length - end)
      if (inserted.length > 0) text.insert(start, inserted)
    }, typing)
  }
  const onChange = (event: Y.YTextEvent, transaction: Y.Transaction): void => {
    if (transaction.origin === typing) return
    const focused = document.activeElement === area
    const [start, end] = [area.selectionStart, area.selectionEnd]
    area.value = text.toString()
    if (focused) area.setSelectionRange(moved(start, event.delta), moved(end, event.delta))
  }
  const renderWho = (): void => {
    const names = new Set<string>()
    for (const [clientId, state] of provider.awareness?.getStates() ?? [])
      if (clientId !== doc.clientID) {
        const name = (state as { user?: { name?: unknown } }).user?.name
        if (typeof name === 'string') names.add(name.slice(0, 32))
      }
    who.textContent = names.size > 0 ? `Also here: ${[...names].join(', ')}` : ''
  }

  text.observe(onChange)
  area.addEventListener('input', onInput)
  provider.awareness?.setLocalStateField('user', { id: me.id, name: me.name })
  provider.awareness?.on('change', renderWho)
  provider.on('synced', () => {
    area.value = text.toString()
    area.disabled = !provider.writable
    area.placeholder = 'Shared notes: everyone in the room edits them at once'
  })
  provider.on('error', (err) => console.warn('[notes]', err))

  return {
    close() {
      area.removeEventListener('input', onInput)
      text.unobserve(onChange)
      provider.awareness?.off('change', renderWho)
      who.textContent = ''
      void provider.destroy().then(() => doc.destroy())
    },
  }
}
