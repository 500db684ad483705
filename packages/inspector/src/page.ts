// The inspector's page: one HTML document, its script and its styles, served from the inspector's
// own routes (no inline script or style, so a strict Content-Security-Policy of the app allows it).
// The script reads the JSON API every 2 s and writes every value with textContent: names, topics and
// message data come from clients and are never parsed as HTML.

/** The page; `base` is the path the inspector is mounted at (its assets and API are under it). */
export const pageHtml = (base: string): string => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Flumen inspector</title>
<link rel="stylesheet" href="${base}/inspector.css">
<link rel="icon" href="${base}/favicon.svg">
<script type="module" src="${base}/inspector.js" data-base="${base}"></script>
</head>
<body>
<main>
<h1>Flumen inspector <span id="mode"></span></h1>
<p id="status" role="status">Loading…</p>
<section aria-labelledby="overview-title"><h2 id="overview-title">This node</h2><dl id="overview"></dl></section>
<section aria-labelledby="connections-title"><h2 id="connections-title">Connections</h2>
<table id="connections"><thead><tr><th>id</th><th>user</th><th>transport</th><th>topics</th><th>buffered</th><th>age</th><th></th></tr></thead><tbody></tbody></table></section>
<section aria-labelledby="topics-title"><h2 id="topics-title">Topics</h2>
<table id="topics"><thead><tr><th>topic</th><th>subscribers</th><th>recovering</th><th>present</th><th>offset</th><th>kept</th></tr></thead><tbody></tbody></table></section>
<section id="topic" hidden aria-labelledby="topic-title"><h2 id="topic-title"></h2>
<p id="topic-position"></p>
<h3>Present</h3><ul id="topic-presence"></ul>
<h3>Recent messages</h3><ol id="topic-messages"></ol>
<form id="publish" hidden><label for="publish-data">Publish JSON</label> <input id="publish-data" value='{"text":"hello"}'> <button>Publish</button></form>
</section>
</main>
</body>
</html>
`

export const pageScript = `const base = document.querySelector('script[data-base]').dataset.base
const $ = (id) => document.getElementById(id)
let readOnly = true
let openTopic

const api = async (path, init) => {
  const response = await fetch(base + '/api' + path, { headers: { 'content-type': 'application/json' }, ...init })
  if (!response.ok) throw new Error((await response.json().catch(() => null))?.error?.message ?? response.statusText)
  return response.status === 204 ? null : response.json()
}
const cell = (row, text) => { const td = row.insertCell(); td.textContent = String(text); return td }
const button = (label, action) => {
  const b = document.createElement('button')
  b.type = 'button'
  b.textContent = label
  b.addEventListener('click', () => action().then(refresh, (err) => { $('status').textContent = err.message }))
  return b
}
const age = (since) => { const s = Math.round((Date.now() - since) / 1000); return s < 120 ? s + ' s' : Math.round(s / 60) + ' min' }
const fill = (table, items, render) => {
  const body = table.tBodies[0]
  body.replaceChildren()
  for (const item of items) render(body.insertRow(), item)
}

const showTopic = async (name) => {
  openTopic = name
  const topic = await api('/topics/' + encodeURIComponent(name))
  $('topic').hidden = false
  $('topic-title').textContent = 'Topic ' + topic.name
  $('topic-position').textContent = 'epoch ' + topic.position.epoch + ', offset ' + topic.position.offset + (topic.historyLength === null ? '' : ', ' + topic.historyLength + ' kept for recovery')
  $('topic-presence').replaceChildren(...topic.presence.map((member) => { const li = document.createElement('li'); li.textContent = JSON.stringify(member); return li }))
  $('topic-messages').replaceChildren(...topic.messages.map((m) => { const li = document.createElement('li'); li.value = m.offset; li.textContent = JSON.stringify(m.data); return li }))
  $('publish').hidden = readOnly
}

const refresh = async () => {
  const [overview, connections, topics] = await Promise.all([api('/overview'), api('/connections'), api('/topics')])
  readOnly = overview.readOnly
  $('mode').textContent = readOnly ? '(read-only)' : ''
  $('overview').replaceChildren(...Object.entries(overview.stats).flatMap(([key, value]) => {
    const dt = document.createElement('dt'); dt.textContent = key
    const dd = document.createElement('dd'); dd.textContent = String(value)
    return [dt, dd]
  }))
  fill($('connections'), connections.connections, (row, c) => {
    cell(row, c.id); cell(row, JSON.stringify(c.user)); cell(row, c.transport); cell(row, c.topics.join(', '))
    cell(row, c.bufferedAmount); cell(row, age(c.connectedAt))
    const actions = row.insertCell()
    if (!readOnly) actions.append(button('Disconnect', () => api('/connections/' + encodeURIComponent(c.id) + '/disconnect', { method: 'POST', body: '{}' })))
  })
  fill($('topics'), topics.topics, (row, t) => {
    const name = row.insertCell()
    name.append(button(t.name, () => showTopic(t.name)))
    cell(row, t.subscribers); cell(row, t.recovering); cell(row, t.presence); cell(row, t.offset); cell(row, t.historyLength ?? '–')
  })
  if (openTopic) await showTopic(openTopic)
  $('status').textContent = 'Updated ' + new Date().toLocaleTimeString() + ': ' + connections.total + ' connections, ' + topics.total + ' topics'
}

$('publish').addEventListener('submit', (event) => {
  event.preventDefault()
  let data
  try { data = JSON.parse($('publish-data').value) } catch { $('status').textContent = 'Not JSON'; return }
  api('/topics/' + encodeURIComponent(openTopic) + '/messages', { method: 'POST', body: JSON.stringify({ data }) })
    .then(refresh, (err) => { $('status').textContent = err.message })
})
const loop = () => refresh().catch((err) => { $('status').textContent = 'Offline: ' + err.message }).finally(() => setTimeout(loop, 2000))
loop()
`

export const pageIcon =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><circle cx="8" cy="8" r="6" fill="#0a58ca"/></svg>'

export const pageStyles = `body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d1d1f; }
main { max-width: 1100px; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 1.5rem; }
#mode { font-size: 0.9rem; color: #555; font-weight: normal; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.25rem 0.5rem; border-bottom: 1px solid #ddd; vertical-align: top; overflow-wrap: anywhere; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.1rem 1rem; }
dt { color: #555; } dd { margin: 0; }
button { font: inherit; cursor: pointer; }
td > button { background: none; border: 0; color: #0a58ca; text-decoration: underline; padding: 0; }
#topic-messages li, #topic-presence li { font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
`
