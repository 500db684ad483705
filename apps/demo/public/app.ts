// The Flumen Rooms page: plain DOM, @flumen/client for the WebSocket channel, the SSE dashboard
// and uploads. Text always goes in with textContent, never as HTML.
// Long on purpose: the page is one script a reader follows top to bottom (state, render, rooms,
// sending, files, dashboard, sign-in), with no bundler-only module structure to learn. The
// dashboard's charts (charts.ts, uPlot) are the one part loaded later.
import type { Client, ClientState } from '@flumen/client'
import { createClient, FlumenClientError, openEventStream, resumableUpload } from '@flumen/client'
import { check } from '@flumen/contract'
import type { Contract, DashboardTick, DirectoryEvent, RoomEvent, RoomLineEvent } from '../src/contract.js'
import { contract } from '../src/contract.js'
import type { Charts } from './charts.js'
import type { RoomNotes } from './notes.js'

/** A signed-in user, as the session API and presence name them. */
interface User {
  id: string
  name: string
}

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T
const namePattern = /^[A-Za-z0-9_-]{1,32}$/

const el = (tag: string, className?: string, text?: string): HTMLElement => {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = text
  return node
}
const time = (at: number): string =>
  new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
const size = (bytes: number): string =>
  bytes < 1024
    ? `${bytes} B`
    : bytes < 1048576
      ? `${(bytes / 1024).toFixed(1)} KB`
      : `${(bytes / 1048576).toFixed(1)} MB`

/** A colour per user id (the same on every page), dark enough for white initials (WCAG AA). */
const colourOf = (id: string): string => {
  let hash = 0
  for (let i = 0; i < id.length; i++) hash = (Math.imul(hash, 31) + id.charCodeAt(i)) | 0
  return `hsl(${Math.abs(hash) % 360} 60% 28%)`
}
const avatar = (user: User): HTMLElement => {
  const badge = el('span', 'avatar', user.name.slice(0, 2).toUpperCase())
  badge.style.background = colourOf(user.id)
  badge.setAttribute('aria-hidden', 'true')
  return badge
}

/** What a person should read for an error. */
const explain = (err: unknown): string => {
  if (err instanceof FlumenClientError) {
    switch (err.code) {
      case 'DISCONNECTED':
      case 'CLOSED':
      case 'TIMEOUT':
        return 'Not connected right now — it will be sent when the connection is back.'
      case 'FORBIDDEN':
        return 'You are not allowed to do that here.'
      case 'TOO_LARGE':
        return 'That is too long.'
      case 'BAD_REQUEST':
        return err.message
      default:
        return `Something went wrong (${err.code}).`
    }
  }
  return 'Something went wrong. Please try again.'
}

const api = async (path: string, init?: RequestInit): Promise<Response> =>
  fetch(path, {
    credentials: 'same-origin',
    ...init,
    headers: { 'content-type': 'application/json', ...init?.headers },
  })

// ---------------------------------------------------------------------------------------------

let me: User
let client: Client<Contract>
/** What the server allows, from GET /api/session (for errors in words rather than byte counts). */
let limits = { uploadMaxBytes: 0 }
let currentRoom = 'lobby'
/** True from a disconnect until the current room's member list came again. */
let presenceStale = false
/** A line of the room that only this page shows: someone joined or left. */
interface Notice {
  type: 'notice'
  text: string
  at: number
}
type RoomLine = RoomLineEvent | Notice
const rooms = new Map<
  string,
  { events: RoomLine[]; ids: Set<string>; unread: number; members: Map<string, User> | undefined }
>()
/**
 * Messages typed but not yet confirmed by the server, shown greyed out until their own copy comes
 * back. The client sends them (again after a reconnect, stored once by the server): nothing to retry.
 */
const sending: { id: string; room: string; text: string }[] = []
const myUploads = new Map<string, { row: HTMLElement; bar: HTMLProgressElement; label: HTMLElement }>()
/** Files others are sending to a room, as its volatile progress ticks tell: by upload id. */
const arriving = new Map<
  string,
  { room: string; from: User; name: string; received: number; total: number | undefined; at: number }
>()
/** Who is typing, per room: user id → the person and when it last said so. */
const typing = new Map<string, Map<string, { who: User; at: number }>>()
/** A file on its way with no progress tick for this long is no longer shown. */
const arrivingTtlMs = 15_000
/** A typing notice lasts this long after its last tick (a tab closed mid-word says nothing more). */
const typingTtlMs = 5000
/** The room directory: every room with messages, and how many are in it now. */
const directory = new Map<string, number>()
/** Raster images get a thumbnail (SVG does not: it is a document, not a picture). */
const previewable = /^image\/(png|jpeg|gif|webp)$/

const showState = (state: ClientState): void => {
  const pill = $('status')
  pill.dataset.state = state
  pill.textContent = state === 'open' ? 'online' : state
  $('banner').hidden = state === 'open' || state === 'connecting'
  // Offline, who is here is not known: the list stays, greyed, until the server sends it again.
  if (state !== 'open' && state !== 'connecting') {
    presenceStale = true
    renderPresence()
  }
}

/** A list this page keeps in localStorage for this user (a new sign-in starts afresh). */
const storedList = {
  key: (name: string): string => `flumen-rooms:${me.id}:${name}`,
  read(name: string): unknown[] {
    try {
      const list = JSON.parse(localStorage.getItem(this.key(name)) ?? '[]') as unknown
      return Array.isArray(list) ? list : []
    } catch {
      return []
    }
  },
  write(name: string, list: unknown[]): void {
    try {
      localStorage.setItem(this.key(name), JSON.stringify(list))
    } catch {
      // storage full or disabled: simply not remembered
    }
  },
}

/** The rooms this user joined, kept across reloads. */
const savedRooms = {
  load: (): string[] =>
    storedList
      .read('rooms')
      .filter((name): name is string => typeof name === 'string' && namePattern.test(name)),
  save: (): void => storedList.write('rooms', [...rooms.keys()]),
}

const renderRooms = (): void => {
  const list = $('rooms')
  list.replaceChildren(
    ...[...rooms].map(([name, room]) => {
      const item = el('li')
      const button = el('button') as HTMLButtonElement
      button.type = 'button'
      button.append(el('span', 'room-name', `# ${name}`))
      if (room.unread > 0) {
        const badge = el('span', 'unread', String(room.unread))
        badge.setAttribute('aria-label', `${room.unread} unread`)
        button.append(badge)
      }
      if (name === currentRoom) button.setAttribute('aria-current', 'true')
      button.onclick = () => switchRoom(name)
      item.append(button)
      return item
    }),
  )
}

/**
 * How a person is named in a room: their name, and a short tag of their id when someone else in the
 * room (present or in its messages) has the same name.
 */
const displayName = (user: User, room: string): string => {
  const others = new Set<string>()
  for (const member of client.presence(`room:${room}`)) if (member.name === user.name) others.add(member.id)
  for (const line of rooms.get(room)?.events ?? []) {
    const from = line.type === 'chat' ? line.from : line.type === 'file' ? line.file.from : undefined
    if (from?.name === user.name) others.add(from.id)
  }
  others.add(user.id)
  return others.size > 1 ? `${user.name} #${user.id.slice(0, 4)}` : user.name
}

const renderPresence = (): void => {
  $('presence-panel').classList.toggle('stale', presenceStale)
  $('presence-stale').hidden = !presenceStale
  const members = client.presence(`room:${currentRoom}`)
  $('online-count').textContent = `(${members.length})`
  $('presence').replaceChildren(
    ...members
      .slice()
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((member) => {
        const item = el('li')
        const name = displayName(member, currentRoom)
        item.append(avatar(member), el('span', 'who', member.id === me.id ? `${name} (you)` : name))
        return item
      }),
  )
}

/** Someone came or went: a line in the room (not for the first member list, nor after a reconnect). */
const onMembers = (name: string, members: User[]): void => {
  const room = rooms.get(name)
  if (!room) return
  const now = new Map(members.map((member) => [member.id, member]))
  const before = room.members
  room.members = now
  if (!before || presenceStale) return
  const lines: Notice[] = []
  for (const [id, member] of now)
    if (!before.has(id) && id !== me.id)
      lines.push({ type: 'notice', text: `${displayName(member, name)} joined`, at: Date.now() })
  for (const [id, member] of before)
    if (!now.has(id))
      lines.push({ type: 'notice', text: `${displayName(member, name)} left`, at: Date.now() })
  if (lines.length === 0) return
  room.events.push(...lines)
  if (name === currentRoom) renderMessages()
}

const messageItem = (event: RoomLine): HTMLElement => {
  if (event.type === 'notice') return el('li', 'notice-line', event.text)
  const from = event.type === 'chat' ? event.from : event.file.from
  const at = event.type === 'chat' ? event.at : event.file.at
  const item = el('li', `message${from.id === me.id ? ' mine' : ''}`)
  const head = el('div', 'head')
  head.append(avatar(from), el('span', 'from', displayName(from, currentRoom)), el('span', 'time', time(at)))
  item.append(head)
  if (event.type === 'chat') item.append(el('div', 'text', event.text))
  else {
    const link = el('a', undefined, event.file.name) as HTMLAnchorElement
    link.href = event.file.url
    link.setAttribute('download', event.file.name)
    if (previewable.test(event.file.type)) {
      const thumb = el('img', 'thumb') as HTMLImageElement
      thumb.src = event.file.url
      thumb.alt = event.file.name
      thumb.loading = 'lazy'
      const frame = el('a', 'thumb-link') as HTMLAnchorElement
      frame.href = event.file.url
      frame.setAttribute('download', event.file.name)
      frame.setAttribute('aria-label', `Download ${event.file.name}`)
      frame.append(thumb)
      item.append(frame)
    }
    const line = el('div', 'text')
    line.append(
      document.createTextNode('File: '),
      link,
      document.createTextNode(` · ${size(event.file.size)}`),
    )
    item.append(line)
  }
  item.dataset.id = event.type === 'chat' ? event.id : `file:${event.file.id}`
  return item
}

const renderMessages = (): void => {
  const list = $('messages')
  const room = rooms.get(currentRoom)
  const items = (room?.events ?? []).map(messageItem)
  for (const pending of sending.filter((entry) => entry.room === currentRoom)) {
    const item = messageItem({ type: 'chat', id: pending.id, from: me, text: pending.text, at: Date.now() })
    item.classList.add('pending')
    item.title = 'Sending…'
    items.push(item)
  }
  list.replaceChildren(...items)
  list.scrollTop = list.scrollHeight
}

/** What the room's live-only events change: typing, files on their way. */
const onRoomSignal = (name: string, event: Exclude<RoomEvent, RoomLineEvent>): void => {
  if (event.from.id === me.id) return // this page shows its own uploads and knows when it types
  if (event.type === 'typing') {
    const inRoom = typing.get(name) ?? new Map<string, { who: User; at: number }>()
    typing.set(name, inRoom)
    if (event.typing) inRoom.set(event.from.id, { who: event.from, at: Date.now() })
    else inRoom.delete(event.from.id)
    if (name === currentRoom) renderTyping()
    return
  }
  if (event.type === 'upload-progress') {
    arriving.set(event.uploadId, {
      room: name,
      from: event.from,
      name: event.file?.name ?? 'a file',
      received: event.received,
      total: event.total,
      at: Date.now(),
    })
  } else arriving.delete(event.uploadId)
  if (name === currentRoom) renderArriving()
}

const renderTyping = (): void => {
  const now = Date.now()
  const inRoom = typing.get(currentRoom)
  const names: string[] = []
  for (const [id, entry] of inRoom ?? []) {
    if (now - entry.at > typingTtlMs) inRoom!.delete(id)
    else names.push(displayName(entry.who, currentRoom))
  }
  $('typing').textContent =
    names.length === 0
      ? ''
      : names.length === 1
        ? `${names[0]} is typing…`
        : names.length === 2
          ? `${names[0]} and ${names[1]} are typing…`
          : `${names.length} people are typing…`
}

/** Others' files on their way into the current room, with how far they got. */
const renderArriving = (): void => {
  const rows: HTMLElement[] = []
  const now = Date.now()
  for (const [id, upload] of arriving) {
    // Ticks come every 200 ms while bytes flow: one silent this long has stopped (a closed tab).
    if (now - upload.at > arrivingTtlMs) {
      arriving.delete(id)
      continue
    }
    if (upload.room !== currentRoom) continue
    const row = el('div', 'upload arriving')
    row.dataset.upload = id
    const who = displayName(upload.from, currentRoom)
    const label = el(
      'div',
      undefined,
      `${who} is sending ${upload.name}${upload.total ? ` (${size(upload.total)})` : ''}`,
    )
    const bar = el('progress') as HTMLProgressElement
    bar.max = 1
    bar.value = upload.total ? upload.received / upload.total : 0
    bar.setAttribute('aria-label', `${upload.name} from ${who}`)
    row.append(avatar(upload.from), label, bar)
    rows.push(row)
  }
  $('arriving').replaceChildren(...rows)
}

const onRoomEvent = (name: string, event: RoomEvent, live = true): void => {
  if (event.type !== 'chat' && event.type !== 'file') {
    if (live) onRoomSignal(name, event)
    return
  }
  const room = rooms.get(name)
  if (!room) return
  const id = event.type === 'chat' ? event.id : `file:${event.file.id}`
  if (room.ids.has(id)) return
  room.ids.add(id)
  room.events.push(event)
  const from = event.type === 'chat' ? event.from : event.file.from
  if (live && name !== currentRoom && from.id !== me.id) {
    room.unread++
    renderRooms()
  }
  if (event.type === 'chat') {
    const pending = sending.findIndex((entry) => `${me.id}:${entry.id}` === event.id)
    if (pending >= 0) sending.splice(pending, 1)
  }
  if (event.type === 'file') {
    if (arriving.delete(event.file.uploadId) && name === currentRoom) renderArriving()
  } else typing.get(name)?.delete(event.from.id) // a sent message ends its typing
  if (live && name === currentRoom) {
    renderMessages()
    renderTyping()
  }
}

/** Loads a room's recent messages over HTTP and merges them (by id, in time order). */
const resync = async (name: string): Promise<void> => {
  try {
    const res = await api(`/api/rooms/${encodeURIComponent(name)}/messages`)
    if (!res.ok) throw new Error(String(res.status))
    const { messages } = (await res.json()) as { messages: { data: unknown }[] }
    const room = rooms.get(name)
    if (!room) return
    // Checked as the socket's messages are: the same contract, whatever way they come.
    const schema = contract.topics['room:{name}'].message
    for (const { data } of messages) {
      const result = check(schema, data)
      if (!(result instanceof Promise) && result.ok) onRoomEvent(name, result.value, false)
    }
    room.events.sort((a, b) => atOf(a) - atOf(b))
    if (name === currentRoom) renderMessages()
  } catch {
    if (name === currentRoom) {
      $('notice').hidden = false
      $('notice').textContent = 'Some messages may be missing: reload the page to see them.'
    }
  }
}

const atOf = (event: RoomLine): number => (event.type === 'file' ? event.file.at : event.at)

const joinRoom = (name: string, show = true): void => {
  if (!rooms.has(name)) {
    rooms.set(name, { events: [], ids: new Set(), unread: 0, members: undefined })
    savedRooms.save()
    const subscription = client.subscribe(`room:${name}`, (event) => onRoomEvent(name, event))
    // What the room said before: merged by id with what arrives live meanwhile.
    subscription.ready.then(
      () => resync(name),
      (err: unknown) => {
        rooms.delete(name)
        savedRooms.save()
        renderRooms()
        $('room-error').textContent = `Could not join #${name}: ${explain(err)}`
      },
    )
  }
  if (show) switchRoom(name)
  else renderRooms()
}

/** The notes' module (Yjs and its binding): loaded after the page shows, as the charts are. */
const notesModule = '/notes.js'
let notesLoading: Promise<typeof import('./notes.js')> | undefined
let notes: RoomNotes | undefined
let notesRoom: string | undefined

/** Opens the shared notes of the room on screen, closing the last room's. */
const showNotes = (name: string): void => {
  if (notesRoom === name) return
  notesRoom = name
  notes?.close()
  notes = undefined
  notesLoading ??= import(notesModule) as Promise<typeof import('./notes.js')>
  notesLoading.then(
    ({ openNotes }) => {
      if (notesRoom === name)
        notes = openNotes(client, name, me, $('notes') as HTMLTextAreaElement, $('notes-who'))
    },
    () => {
      notesLoading = undefined // the next room switch tries again
      ;($('notes') as HTMLTextAreaElement).placeholder = 'The notes could not load: reload the page.'
    },
  )
}

const switchRoom = (name: string): void => {
  if (name !== currentRoom) typingSignal.stopped()
  currentRoom = name
  showNotes(name)
  const room = rooms.get(name)
  if (room) room.unread = 0
  $('room-title').textContent = `# ${name}`
  $('notice').hidden = true
  $('room-error').textContent = ''
  renderRooms()
  renderMessages()
  renderPresence()
  renderTyping()
  renderArriving()
  renderDirectory()
  history.replaceState(null, '', `#${name}`)
}

/** Tells the room this user is typing: at most every 2 s while keys are pressed, and when it stops. */
const typingSignal = (() => {
  let sentAt = 0
  let stopTimer: ReturnType<typeof setTimeout> | undefined
  const send = (room: string, on: boolean): void => {
    // Volatile: never stored, dropped when offline (a late "is typing" would be wrong).
    void client.publish(`room:${room}`, { typing: on }, { volatile: true }).catch(() => {})
  }
  return {
    typed(): void {
      const room = currentRoom
      clearTimeout(stopTimer)
      stopTimer = setTimeout(() => this.stopped(room), 3000)
      if (Date.now() - sentAt < 2000) return
      sentAt = Date.now()
      send(room, true)
    },
    stopped(room = currentRoom): void {
      clearTimeout(stopTimer)
      if (sentAt === 0) return
      sentAt = 0
      send(room, false)
    },
  }
})()

const renderDirectory = (): void => {
  const entries = [...directory].filter(([name]) => !rooms.has(name))
  $('directory-panel').hidden = entries.length === 0
  $('directory').replaceChildren(
    ...entries
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, 20)
      .map(([name, users]) => {
        const item = el('li')
        const button = el('button') as HTMLButtonElement
        button.type = 'button'
        // What it says is what a screen reader reads: the room, and how many are in it.
        button.append(el('span', 'room-name', `# ${name}`), el('span', 'occupancy', `${users} here`))
        button.dataset.room = name
        button.onclick = () => joinRoom(name)
        item.append(button)
        return item
      }),
  )
}

const onDirectory = (event: DirectoryEvent): void => {
  if (event.type === 'room') {
    if (!directory.has(event.name)) directory.set(event.name, 0)
  } else for (const [name, users] of Object.entries(event.rooms)) directory.set(name, users)
  renderDirectory()
}

const loadDirectory = async (): Promise<void> => {
  const res = await api('/api/rooms').catch(() => undefined)
  if (!res?.ok) return
  const { rooms: listed } = (await res.json()) as { rooms: { name: string; users: number }[] }
  for (const { name, users } of listed) if (namePattern.test(name)) directory.set(name, users)
  renderDirectory()
}

const sendMessage = (text: string): void => {
  const entry = { id: crypto.randomUUID().replace(/-/g, '').slice(0, 24), room: currentRoom, text }
  sending.push(entry)
  renderMessages()
  // echo: the server's copy (with the sender it names) comes back to this tab too.
  client.publish(`room:${entry.room}`, { text, id: entry.id }, { echo: true }).catch((err: unknown) => {
    const at = sending.indexOf(entry)
    if (at >= 0) sending.splice(at, 1)
    $('room-error').textContent = explain(err)
    renderMessages()
  })
}

const shareFile = async (file: File): Promise<void> => {
  const uploadId = crypto.randomUUID().replace(/-/g, '').slice(0, 24)
  const row = el('div', 'upload')
  const label = el('div', undefined, `Uploading ${file.name} (${size(file.size)})…`)
  const bar = el('progress') as HTMLProgressElement
  bar.max = 1
  bar.value = 0
  bar.setAttribute('aria-label', `Upload of ${file.name}`)
  const controller = new AbortController()
  const cancel = el('button', 'link cancel', 'Cancel') as HTMLButtonElement
  cancel.type = 'button'
  cancel.setAttribute('aria-label', `Cancel the upload of ${file.name}`)
  cancel.onclick = () => controller.abort()
  // The picture itself, from memory, while it goes up.
  let preview: string | undefined
  if (previewable.test(file.type)) {
    preview = URL.createObjectURL(file)
    const thumb = el('img', 'thumb') as HTMLImageElement
    thumb.src = preview
    thumb.alt = ''
    row.append(thumb)
  }
  row.append(label, bar, cancel)
  $('uploads').append(row)
  myUploads.set(uploadId, { row, bar, label })
  unfinished.add(file)
  try {
    // Resumable (tus): a drop continues from what the server has; after a reload, choosing the same
    // file again continues it too (the client keeps its upload URL by the file's fingerprint).
    let first = true
    await resumableUpload('/api/files', file, {
      metadata: { room: currentRoom },
      signal: controller.signal,
      onProgress: ({ loaded, total }) => {
        bar.value = total ? loaded / total : 0
        if (first && loaded > 0 && total) {
          label.textContent = `Resuming ${file.name} at ${Math.floor((loaded / total) * 100)}%…`
          row.dataset.resumed = String(loaded)
        }
        first = false
      },
    })
    unfinished.remove(file)
    cancel.remove()
    bar.value = 1
    label.textContent = `Shared ${file.name}`
    setTimeout(() => row.remove(), 1500)
    return
  } catch (err) {
    cancel.remove()
    bar.remove()
    if (err instanceof FlumenClientError && err.code === 'ABORTED') {
      unfinished.remove(file)
      row.classList.add('cancelled')
      label.textContent = `Cancelled ${file.name}.`
      setTimeout(() => row.remove(), 3000)
      return
    }
    row.classList.add('failed')
    label.textContent =
      err instanceof FlumenClientError && err.status === 413
        ? `${file.name} is too large: files can be up to ${size(limits.uploadMaxBytes)}.`
        : err instanceof FlumenClientError && err.code === 'HTTP_ERROR'
          ? err.message
          : `Could not upload ${file.name}: choose it again to continue where it stopped.`
    setTimeout(() => row.remove(), 8000)
  } finally {
    myUploads.delete(uploadId)
    renderUnfinished()
    if (preview) URL.revokeObjectURL(preview)
  }
}

/**
 * Files whose upload had not finished when the page went away: named after a reload, so the user
 * knows that choosing one again continues it (the client finds its upload by the file's fingerprint).
 */
const unfinished = {
  id: (file: File): string => `${file.name}:${file.size}:${file.lastModified}`,
  list: (): { id: string; name: string; size: number }[] =>
    storedList.read('unfinished') as { id: string; name: string; size: number }[],
  save(entries: { id: string; name: string; size: number }[]): void {
    storedList.write('unfinished', entries.slice(-10))
    renderUnfinished()
  },
  add(file: File): void {
    const id = this.id(file)
    this.save([...this.list().filter((entry) => entry.id !== id), { id, name: file.name, size: file.size }])
  },
  remove(file: File): void {
    const id = this.id(file)
    this.save(this.list().filter((entry) => entry.id !== id))
  },
}

const renderUnfinished = (): void => {
  const waiting = myUploads.size === 0 ? unfinished.list() : []
  $('unfinished').hidden = waiting.length === 0
  $('unfinished').textContent =
    waiting.length === 0
      ? ''
      : `Not finished: ${waiting.map((entry) => `${entry.name} (${size(entry.size)})`).join(', ')}. Share it again to continue where it stopped.`
}

/** Files dropped on the room are shared there, one upload each. */
const acceptDrops = (zone: HTMLElement): void => {
  let depth = 0 // dragenter/dragleave fire for every child crossed
  const carriesFiles = (event: DragEvent): boolean => event.dataTransfer?.types.includes('Files') === true
  zone.addEventListener('dragenter', (event) => {
    if (!carriesFiles(event)) return
    depth++
    zone.classList.add('dropping')
  })
  zone.addEventListener('dragleave', () => {
    if (depth > 0 && --depth === 0) zone.classList.remove('dropping')
  })
  zone.addEventListener('dragover', (event) => {
    if (carriesFiles(event)) event.preventDefault() // allows the drop
  })
  zone.addEventListener('drop', (event) => {
    event.preventDefault()
    depth = 0
    zone.classList.remove('dropping')
    for (const file of event.dataTransfer?.files ?? []) void shareFile(file)
  })
}

/** The dashboard ticks every second: after this long without one, what it shows is stale. */
const dashboardStaleMs = 3000

/** The charts' module: loaded once the dashboard streams, so the page's first paint does not wait. */
const chartsModule = '/charts.js'

const startDashboard = async (): Promise<void> => {
  const stream = openEventStream('/sse?topic=dashboard', { contract })
  let lastTickAt = 0
  const markStale = (stale: boolean): void => {
    $('dashboard').classList.toggle('stale', stale)
    $('dash-stale').hidden = !stale
    $('dash-live').classList.toggle('live', !stale)
  }
  setInterval(() => {
    if (lastTickAt > 0) markStale(Date.now() - lastTickAt > dashboardStaleMs)
  }, 1000)
  // Each node ticks once a second: the page sums the latest tick of every node heard from lately.
  const nodes = new Map<string, { tick: DashboardTick; at: number }>()
  let charts: Charts | undefined
  let loading: Promise<void> | undefined
  let pushedAt = 0
  const chartPoint = (): void => {
    const now = Date.now()
    for (const [node, entry] of nodes) if (now - entry.at > dashboardStaleMs) nodes.delete(node)
    const ticks = [...nodes.values()].map((entry) => entry.tick)
    const sum = (read: (tick: DashboardTick) => number): number => ticks.reduce((n, t) => n + read(t), 0)
    const rooms: Record<string, number> = {}
    for (const tick of ticks)
      for (const [room, rate] of Object.entries(tick.rooms)) rooms[room] = (rooms[room] ?? 0) + rate
    const totals = {
      in: sum((t) => t.messagesPerSecond),
      out: sum((t) => t.deliveriesPerSecond),
      ws: sum((t) => t.connections.ws),
      sse: sum((t) => t.connections.sse),
    }
    $('dash-ws').textContent = String(totals.ws)
    $('dash-sse').textContent = String(totals.sse)
    $('dash-rate').textContent = `${totals.in} in, ${totals.out} out`
    $('dash-uploads').textContent =
      `${sum((t) => t.uploads.completed)} done · ${sum((t) => t.uploads.active)} now`
    $('dash-nodes').textContent = String(ticks.length)
    charts?.push({
      at: Math.floor(now / 1000),
      messagesIn: totals.in,
      messagesOut: totals.out,
      ws: totals.ws,
      sse: totals.sse,
      rooms,
      nodes: Object.fromEntries(ticks.map((t) => [t.node, t.connections.ws + t.connections.sse])),
    })
  }
  try {
    for await (const event of stream) {
      if (event.message?.pattern !== 'dashboard') continue
      const tick = event.message.data
      lastTickAt = Date.now()
      nodes.set(tick.node, { tick, at: lastTickAt })
      markStale(false)
      loading ??= (import(chartsModule) as Promise<typeof import('./charts.js')>).then(
        ({ createCharts }) => {
          charts = createCharts($('charts'))
        },
        () => {}, // no charts: the numbers still show
      )
      if (lastTickAt - pushedAt >= 900) {
        pushedAt = lastTickAt
        chartPoint()
      }
    }
  } catch {
    markStale(true)
  }
}

const start = (user: User): void => {
  me = user
  $('signin').hidden = true
  $('workspace').hidden = false
  $('logout').hidden = false
  $('status').hidden = false
  $('me').textContent = user.name
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws'
  // The session cookie authenticates the socket; nothing else to send.
  client = createClient({
    url: `${scheme}://${location.host}/ws`,
    contract,
    retryDelayMs: (n) => Math.min(250 * 2 ** n, 5000) * Math.random() + 100,
  })
  client.on('state', (state) => {
    showState(state)
    if (state === 'closed') {
      $('banner').hidden = false
      $('banner').textContent = 'You have been signed out. Reload the page to sign in again.'
    }
  })
  client.on('presence', ({ topic }) => {
    if (!topic.startsWith('room:')) return
    const name = topic.slice('room:'.length)
    onMembers(name, client.presence(`room:${name}`))
    if (topic !== `room:${currentRoom}`) return
    if (client.state === 'open') presenceStale = false
    renderPresence()
  })
  client.on('reset', ({ topic }) => {
    // The gap could not be recovered over the socket: fetch the room's recent messages instead.
    // (Counted on the list, for the browser tests: a restart of a server with history is no reset.)
    $('messages').dataset.resets = String(Number($('messages').dataset.resets ?? 0) + 1)
    const name = topic.slice('room:'.length)
    if (topic.startsWith('room:')) void resync(name)
  })
  client.subscribe('directory', onDirectory).ready.then(loadDirectory, () => {})
  renderUnfinished()
  // Typing notices and files on their way age out even when nobody says they stopped.
  setInterval(() => {
    renderTyping()
    renderArriving()
  }, 1000)
  for (const name of savedRooms.load()) joinRoom(name, false)
  joinRoom(decodeURIComponent(location.hash.slice(1)) || 'lobby')
  void startDashboard()
}

const boot = async (): Promise<void> => {
  $('signin-form').addEventListener('submit', async (event) => {
    event.preventDefault()
    const name = ($('name') as HTMLInputElement).value.trim()
    if (!namePattern.test(name)) {
      $('signin-error').textContent = 'Use 1–32 letters, digits, “_” or “-”.'
      return
    }
    const res = await api('/api/session', { method: 'POST', body: JSON.stringify({ name }) }).catch(
      () => undefined,
    )
    if (!res?.ok) {
      $('signin-error').textContent = res
        ? ((await res.json()).error?.message ?? 'Could not sign in.')
        : 'The server cannot be reached.'
      return
    }
    start(((await res.json()) as { user: User }).user)
  })
  $('join-form').addEventListener('submit', (event) => {
    event.preventDefault()
    const input = $('room-name') as HTMLInputElement
    const name = input.value.trim()
    if (!namePattern.test(name)) {
      $('room-error').textContent = 'Room names are 1–32 letters, digits, “_” or “-”.'
      return
    }
    input.value = ''
    joinRoom(name)
  })
  $('send-form').addEventListener('submit', (event) => {
    event.preventDefault()
    const input = $('text') as HTMLInputElement
    const text = input.value.trim()
    if (!text) return
    input.value = ''
    $('room-error').textContent = ''
    typingSignal.stopped()
    sendMessage(text)
  })
  $('text').addEventListener('input', () => {
    if (($('text') as HTMLInputElement).value.trim()) typingSignal.typed()
    else typingSignal.stopped()
  })
  $('text').addEventListener('blur', () => typingSignal.stopped())
  acceptDrops($('room'))
  $('file').addEventListener('change', () => {
    const input = $('file') as HTMLInputElement
    const files = [...(input.files ?? [])]
    input.value = ''
    for (const file of files) void shareFile(file)
  })
  $('logout').addEventListener('click', async () => {
    await api('/api/logout', { method: 'POST' }).catch(() => {})
    location.reload()
  })
  // 200 signed in or not (a 401 here would be an error in every visitor's console).
  const res = await api('/api/session').catch(() => undefined)
  const session = res?.ok ? ((await res.json()) as { user: User | null; limits: typeof limits }) : undefined
  if (session) limits = session.limits
  if (session?.user) start(session.user)
  else $('signin').hidden = false
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', () => void boot())
else void boot()
