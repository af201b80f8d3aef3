// The annotator's page: a waveform drawn from the oracle's peaks (no decoding in the
// browser), the clip streamed, segments as regions, and autosave through the oracle to CVAT.
// The segment list in `state.segs` is the truth; regions on the waveform are drawn from it.
import WaveSurfer from 'wavesurfer.js'
import MinimapPlugin from 'wavesurfer.js/dist/plugins/minimap.esm.js'
import RegionsPlugin from 'wavesurfer.js/dist/plugins/regions.esm.js'
import TimelinePlugin from 'wavesurfer.js/dist/plugins/timeline.esm.js'
import './annotate.css'

const SAVE_DELAY_MS = 700
const FLASH_MS = 8000
const RETRY_MS = 3000
const NEW_SEGMENT_MS = 2000
const NUDGE_MS = 50
const SNAP_PX = 8
const MAX_REGIONS = 300 // regions drawn at once; more are left to the segment strip
const MAX_PEAK_POINTS = 2_000_000 // a finer zoom level is fetched only below this many pixels
const COLORS = ['#2f6fde', '#d9480f', '#2b8a3e', '#ae3ec9', '#e67700', '#1098ad', '#c2255c', '#5c940d', '#364fc7']

const $ = (selector) => document.querySelector(selector)
const path = location.pathname
const assignmentId = decodeURIComponent(path.slice(path.lastIndexOf('/annotate/') + 10).split('/')[0])
const root = path.slice(0, path.lastIndexOf('/annotate/')) // the oracle may sit under a prefix

const state = {
  info: null,
  segs: [], // {key, start, end, label, transcription, attributes} in clip milliseconds
  selected: null,
  undo: [],
  redo: [],
  savedJson: '[]',
  saving: false,
  saveAgain: false,
  saveTimer: null,
  feedback: null,
  feedbackKeys: [], // the segment each of the feedback's numbers names
  loadedZoom: 0,
  defaultLabel: null,
  textEditKey: null, // the segment whose transcription is being typed (one undo step)
  finished: false,
  playhead: 0, // ms
}
let ws = null
let regions = null
let nextKey = 1

// -- the worker's token and the API ------------------------------------------------------

function takeToken() {
  const key = `annotate-token:${assignmentId}`
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token')
  if (fromHash) {
    sessionStorage.setItem(key, fromHash)
    history.replaceState(null, '', location.pathname + location.search) // keep it out of sight
    return fromHash
  }
  return sessionStorage.getItem(key)
}
const token = takeToken()

class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === 'string' ? detail : detail?.message || `HTTP ${status}`)
    this.status = status
    this.detail = detail
  }
}

async function api(method, suffix, body) {
  const headers = { Authorization: `Bearer ${token}` }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  let reply
  try {
    reply = await fetch(`${root}/assignment/${encodeURIComponent(assignmentId)}${suffix}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    })
  } catch {
    throw new ApiError(0, 'the oracle cannot be reached; check your connection')
  }
  const data = await reply.json().catch(() => null)
  if (!reply.ok) throw new ApiError(reply.status, data?.detail ?? data)
  return data
}

// -- pages that say why there is nothing to annotate -------------------------------------

function refuse(kind, title, text) {
  state.finished = true
  ws?.pause()
  document.body.dataset.state = kind
  $('#loading').hidden = true
  $('#app').hidden = true
  const box = $('#refusal')
  box.hidden = false
  box.querySelector('h1').textContent = title
  box.querySelector('p').textContent = text
  document.title = `${title} · audio annotation`
}

function refuseError(err) {
  if (err.status === 401 || err.status === 403 || !token) {
    return refuse('signin', 'Your sign-in is not valid here',
      'It may have expired. Open the assignment again from HUMAN App.')
  }
  if (err.status === 404) {
    return refuse('foreign', 'This assignment is not yours',
      `There is no assignment ${assignmentId} for the account you are signed in with.`)
  }
  if (err.status === 409) {
    return refuse('finished', 'This assignment can no longer change', String(err.message))
  }
  return refuse('error', 'The assignment could not be loaded', String(err.message))
}

function refuseStatus(status, expiresAt) {
  const when = new Date(expiresAt).toLocaleString()
  const pages = {
    expired: ['expired', 'This assignment has expired',
      `Its time ran out on ${when}. The job went back to the pool: take a new assignment in HUMAN App.`],
    completed: ['finished', 'This assignment is finished',
      'Its work was submitted and is being reviewed. Nothing more to do here.'],
    validation: ['finished', 'This assignment is finished',
      'Its work was submitted and is being reviewed. Nothing more to do here.'],
    rejected: ['finished', 'This assignment was rejected',
      'Its work did not pass review; the job went back to the pool.'],
    canceled: ['canceled', 'This assignment was canceled',
      'It was given back or its escrow was canceled. Take a new assignment in HUMAN App.'],
  }
  const [kind, title, text] = pages[status] || ['finished', `This assignment is ${status}`, '']
  refuse(kind, title, text)
}

// -- time and text helpers -----------------------------------------------------------------

function clock(ms) {
  const total = Math.max(0, Math.round(ms))
  const h = Math.floor(total / 3_600_000)
  const m = Math.floor((total % 3_600_000) / 60_000)
  const s = ((total % 60_000) / 1000).toFixed(3).padStart(6, '0')
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`
}

// The playhead is ours: the media element reports a seek's position only once it settles,
// so quick key presses would otherwise start from a stale time.
const nowMs = () => state.playhead
function seek(ms) {
  state.playhead = Math.round(Math.min(clipMs(), Math.max(0, ms)))
  ws.setTime(state.playhead / 1000)
  showClock()
}
const showClock = () => ($('#clock').textContent = `${clock(state.playhead)} / ${clock(clipMs())}`)
const clipMs = () => state.info.clip_ms
const labelOf = (name) => state.info.labels.find((label) => label.name === name)
const colorOf = (name) => {
  const index = state.info.labels.findIndex((label) => label.name === name)
  return COLORS[(index < 0 ? 0 : index) % COLORS.length]
}
const sorted = () => [...state.segs].sort((a, b) => a.start - b.start || a.end - b.end)
const byKey = (key) => state.segs.find((seg) => seg.key === key)

let flashTimer = 0
function flash(text, { stay = false } = {}) {
  // A message is about the last action: it goes with the next one, or after a while.
  const box = $('#message')
  box.textContent = text
  box.hidden = !text
  clearTimeout(flashTimer)
  if (text && !stay) flashTimer = setTimeout(() => flash(''), FLASH_MS)
}

// -- the segment model: every change goes through commit() (undo, redraw, autosave) -----

const snapshot = () => JSON.stringify({ segs: state.segs, selected: state.selected })

function commit(change, { coalesce = false } = {}) {
  const before = snapshot()
  const refusal = change()
  if (refusal) {
    flash(refusal)
    render()
    return false
  }
  if (!coalesce) state.undo.push(before)
  if (state.undo.length > 200) state.undo.shift()
  state.redo = []
  flash('')
  render()
  scheduleSave()
  return true
}

function restore(json) {
  const doc = JSON.parse(json)
  state.segs = doc.segs
  state.selected = doc.selected
  state.textEditKey = null
  render()
  scheduleSave()
}

function undo() {
  if (!state.undo.length) return
  flash('') // whatever it said was about what is now undone
  state.redo.push(snapshot())
  restore(state.undo.pop())
}

function redo() {
  if (!state.redo.length) return
  flash('')
  state.undo.push(snapshot())
  restore(state.redo.pop())
}

function overlapRefusal(seg) {
  if (state.info.allow_overlap) return null
  const other = state.segs.find((o) => o.key !== seg.key && o.start < seg.end && seg.start < o.end)
  return other ? `Segments may not overlap in this job (it would overlap ${clock(other.start)}–${clock(other.end)}).` : null
}

function boundsRefusal(seg) {
  if (!(seg.start >= 0 && seg.end <= clipMs())) return 'A segment must lie inside the clip.'
  if (seg.end <= seg.start) return `A segment must end after it starts (start ${clock(seg.start)}, end ${clock(seg.end)}).`
  if (seg.end - seg.start < 10) return 'A segment must be at least 10 ms long.'
  return null
}

function snapMs(ms) {
  if (!$('#snap').checked) return ms
  const pxPerSec = ws ? ws.getWrapper().scrollWidth / (clipMs() / 1000) : 20
  const reach = Math.max(20, (SNAP_PX / pxPerSec) * 1000)
  let best = ms
  let distance = reach
  for (const edge of state.info.pre_segments.flat()) {
    if (Math.abs(edge - ms) <= distance) [best, distance] = [edge, Math.abs(edge - ms)]
  }
  return best
}

function place(seg, start, end) {
  const moved = { ...seg, start: Math.round(start), end: Math.round(end) }
  return boundsRefusal(moved) || overlapRefusal(moved) || ((seg.start = moved.start), (seg.end = moved.end), null)
}

function addSegment(start, end) {
  const seg = {
    key: `n${nextKey++}`,
    start: Math.round(start),
    end: Math.round(end),
    label: state.defaultLabel,
    transcription: '',
    attributes: {},
  }
  return commit(() => {
    const refusal = boundsRefusal(seg) || overlapRefusal(seg)
    if (refusal) return refusal
    state.segs.push(seg)
    state.selected = seg.key
    return null
  })
}

function newSegmentAtPlayhead() {
  const at = nowMs()
  const next = sorted().find((seg) => seg.start > at)
  const inside = state.segs.find((seg) => seg.start <= at && at < seg.end)
  if (inside && !state.info.allow_overlap) {
    flash('The playhead is inside a segment: move it to a gap first (or split this one with S).')
    return
  }
  const end = Math.min(at + NEW_SEGMENT_MS, next && !state.info.allow_overlap ? next.start : Infinity, clipMs())
  addSegment(at, end)
}

function setEdge(side, ms) {
  const seg = byKey(state.selected)
  if (!seg) return
  commit(() => (side === 'start' ? place(seg, ms, seg.end) : place(seg, seg.start, ms)))
}

function splitSelected() {
  const seg = byKey(state.selected)
  const at = nowMs()
  if (!seg || !(seg.start + 10 < at && at < seg.end - 10)) {
    flash('Put the playhead inside the selected segment to split it.')
    return
  }
  commit(() => {
    const tail = { ...seg, key: `n${nextKey++}`, start: at, transcription: '', attributes: { ...seg.attributes } }
    seg.end = at
    state.segs.push(tail)
    state.selected = tail.key
    return null
  })
}

function mergeSelected() {
  const seg = byKey(state.selected)
  const order = sorted()
  const next = seg && order[order.indexOf(seg) + 1]
  if (!next) {
    flash('There is no next segment to merge with.')
    return
  }
  commit(() => {
    seg.end = Math.max(seg.end, next.end)
    seg.transcription = [seg.transcription, next.transcription].filter(Boolean).join(' ')
    for (const [name, value] of Object.entries(next.attributes)) {
      if (!seg.attributes[name]) seg.attributes[name] = value
    }
    state.segs = state.segs.filter((s) => s !== next)
    return null
  })
}

function deleteSelected() {
  const order = sorted()
  const index = order.findIndex((seg) => seg.key === state.selected)
  if (index < 0) return
  const gone = order[index]
  const done = commit(() => {
    state.segs = state.segs.filter((seg) => seg.key !== state.selected)
    const neighbour = order[index + 1] || order[index - 1]
    state.selected = neighbour && neighbour.key !== state.selected ? neighbour.key : null
    return null
  })
  if (done) {
    const what = gone.transcription ? ` and its transcription “${gone.transcription.slice(0, 40)}”` : ''
    flash(`Deleted the segment ${clock(gone.start)}–${clock(gone.end)}${what}. Ctrl+Z brings it back.`)
  }
}

function select(key, { seek: move = true } = {}) {
  if (key !== state.selected) flash('')
  state.selected = key
  const seg = byKey(key)
  if (seg && move && ws) seek(seg.start)
  render()
}

function selectNeighbour(step) {
  const order = sorted()
  if (!order.length) return
  const index = order.findIndex((seg) => seg.key === state.selected)
  const at = nowMs()
  let target
  if (index < 0) {
    target = step > 0 ? order.find((seg) => seg.end > at) || order.at(-1) : [...order].reverse().find((seg) => seg.start < at) || order[0]
  } else {
    target = order[Math.min(order.length - 1, Math.max(0, index + step))]
  }
  select(target.key)
  $(`#segments [data-key="${target.key}"]`)?.scrollIntoView({ block: 'nearest' })
}

function setLabel(name) {
  state.defaultLabel = name
  const seg = byKey(state.selected)
  if (!seg) return render()
  commit(() => {
    seg.label = name
    return null
  })
}

// -- drawing --------------------------------------------------------------------------------

function problemsBySegment() {
  // The server numbers segments in the order they were saved: map its numbers to the
  // segments themselves, so a marker stays on its segment when others come or go.
  const out = new Map()
  for (const problem of state.feedback?.problems || []) {
    const key = problem.segment && state.feedbackKeys[problem.segment - 1]
    if (key) out.set(key, [...(out.get(key) || []), problem.message])
  }
  return out
}

function render() {
  if (!state.info) return
  drawRegions()
  drawList()
  drawEditor()
  drawLabels()
  drawSaveState()
  drawFeedback()
  $('#undo').disabled = !state.undo.length
  $('#redo').disabled = !state.redo.length
}

// What each region and list row last showed, so a render touches only what changed: with
// thousands of segments (a two-hour clip) a full redraw per key press would lag.
const drawnRegions = new Map() // key -> signature
const drawnRows = new Map() // key -> {item, signature}
let drawnOrder = ''

function visibleSpan() {
  // [start, end] ms of the waveform in view, with half a screen either side
  const seconds = clipMs() / 1000
  const pxPerMs = ws.getWrapper().scrollWidth / clipMs()
  const width = ws.getWidth()
  const left = ws.getScroll()
  return seconds ? [(left - width / 2) / pxPerMs, (left + 1.5 * width) / pxPerMs] : [0, 0]
}

function drawRegions() {
  if (!regions || !ws.getDuration()) return // regions are placed once the duration is known
  drawStrip()
  // Regions are DOM elements the browser lays out on every frame: draw only those in view,
  // and none while too many are (zoomed far out on a long clip; the strip shows them all).
  const [from, to] = visibleSpan()
  const inView = state.segs.filter((seg) => seg.end >= from && seg.start <= to)
  const crowded = inView.length > MAX_REGIONS
  $('#zoom-hint').hidden = !crowded
  const wanted = crowded ? inView.filter((seg) => seg.key === state.selected) : inView
  const live = new Set()
  const shown = new Map(regions.getRegions().map((region) => [region.id, region]))
  for (const seg of wanted) {
    live.add(seg.key)
    const selected = seg.key === state.selected
    const color = `${colorOf(seg.label)}${selected ? '55' : '26'}`
    const signature = `${seg.start}:${seg.end}:${color}:${seg.label}`
    const region = shown.get(seg.key)
    if (region && drawnRegions.get(seg.key) === signature) continue
    const params = { start: seg.start / 1000, end: seg.end / 1000, color, content: seg.label || '?' }
    if (region) region.setOptions(params)
    else regions.addRegion({ id: seg.key, minLength: 0.01, ...params })
    drawnRegions.set(seg.key, signature)
  }
  for (const [key, region] of shown) {
    if (!live.has(key)) {
      region.remove()
      drawnRegions.delete(key)
    }
  }
}

function drawStrip() {
  // every segment of the clip as a tick under the minimap: the whole picture at any zoom
  const canvas = $('#strip')
  const width = canvas.clientWidth
  const ratio = window.devicePixelRatio || 1
  canvas.width = width * ratio
  canvas.height = canvas.clientHeight * ratio
  const g = canvas.getContext('2d')
  g.scale(ratio, ratio)
  const scale = width / clipMs()
  for (const seg of state.segs) {
    g.fillStyle = seg.key === state.selected ? '#1f2933' : colorOf(seg.label)
    g.fillRect(seg.start * scale, 0, Math.max(1, (seg.end - seg.start) * scale), canvas.clientHeight)
  }
}

function drawList() {
  const list = $('#segments')
  const problems = problemsBySegment()
  const order = sorted()
  const orderKey = order.map((seg) => seg.key).join(',')
  const rows = order.map((seg) => {
    const issues = problems.get(seg.key)
    const signature = [seg.start, seg.end, seg.label, seg.transcription, seg.key === state.selected, issues?.join('|')].join('\u0000')
    const known = drawnRows.get(seg.key)
    if (known?.signature === signature) return known.item
    const item = known?.item || document.createElement('li')
    item.replaceChildren(listButton(seg, issues))
    drawnRows.set(seg.key, { item, signature })
    return item
  })
  if (orderKey !== drawnOrder) {
    list.replaceChildren(...rows)
    drawnOrder = orderKey
    for (const key of drawnRows.keys()) if (!byKey(key)) drawnRows.delete(key)
  }
  $('#count').textContent = `(${state.segs.length})`
}

function listButton(seg, issues) {
  const button = document.createElement('button')
  button.type = 'button'
  button.dataset.key = seg.key
  button.className = seg.key === state.selected ? 'seg selected' : 'seg'
  if (issues) {
    button.classList.add('incomplete')
    button.title = issues.join('\n')
  }
  const swatch = document.createElement('span')
  swatch.className = 'swatch'
  swatch.style.background = colorOf(seg.label)
  const time = document.createElement('span')
  time.className = 'time'
  time.textContent = `${clock(seg.start)}–${clock(seg.end)}`
  const text = document.createElement('span')
  text.className = 'text'
  text.dir = 'auto'
  text.textContent = seg.transcription || (labelOf(seg.label)?.transcription ? '(no transcription)' : seg.label)
  button.append(swatch, time, text)
  button.addEventListener('click', () => select(seg.key))
  return button
}

function drawEditor() {
  const seg = byKey(state.selected)
  $('#editor-empty').hidden = !!seg
  const form = $('#editor-form')
  form.hidden = !seg
  if (!seg) {
    $('#editor-title').textContent = ''
    return
  }
  const index = sorted().indexOf(seg) + 1
  $('#editor-title').textContent = `${index} of ${state.segs.length}`
  const setValue = (input, value) => {
    if (document.activeElement !== input && input.value !== value) input.value = value
  }
  setValue($('#seg-start'), (seg.start / 1000).toFixed(3))
  setValue($('#seg-end'), (seg.end / 1000).toFixed(3))
  setValue($('#seg-label'), seg.label || '')
  const text = $('#seg-text')
  setValue(text, seg.transcription)
  const needsText = !!labelOf(seg.label)?.transcription
  text.disabled = !needsText && !seg.transcription
  text.placeholder = needsText ? 'Type what is said' : 'This label needs no transcription'
  const box = $('#seg-attributes')
  const wanted = labelOf(seg.label)?.attributes || []
  if (box.dataset.for !== `${seg.key}:${seg.label}`) {
    box.dataset.for = `${seg.key}:${seg.label}`
    box.replaceChildren(...wanted.map((attribute) => attributeField(attribute)))
  }
  for (const attribute of wanted) {
    const input = box.querySelector(`[name="${CSS.escape(attribute.name)}"]`)
    if (input) setValue(input, seg.attributes[attribute.name] || '')
  }
}

function attributeField(attribute) {
  const label = document.createElement('label')
  label.textContent = `${attribute.name}${attribute.required ? ' *' : ''} `
  let input
  if (attribute.values.length) {
    input = document.createElement('select')
    input.append(new Option('—', ''), ...attribute.values.map((value) => new Option(value, value)))
  } else {
    input = document.createElement('input')
    input.type = attribute.type === 'number' ? 'number' : 'text'
  }
  input.name = attribute.name
  input.dataset.attribute = attribute.name
  input.addEventListener('change', () => {
    const seg = byKey(state.selected)
    if (!seg) return
    commit(() => {
      if (input.value) seg.attributes[attribute.name] = input.value
      else delete seg.attributes[attribute.name]
      return null
    })
  })
  label.append(input)
  return label
}

function drawLabels() {
  const seg = byKey(state.selected)
  const current = seg ? seg.label : state.defaultLabel
  for (const button of $('#labels').children) {
    button.classList.toggle('active', button.dataset.label === current)
  }
}

function drawFeedback() {
  const box = $('#feedback')
  const feedback = state.feedback
  if (!feedback) return
  const pending = isDirty() || state.saving // the server has not checked the latest edits
  const complete = feedback.complete && !pending
  const head = document.createElement('p')
  head.className = complete ? 'ok' : 'warn'
  head.textContent = complete
    ? `Complete: ${feedback.segments} segment${feedback.segments === 1 ? '' : 's'} ready to submit.`
    : pending && feedback.complete
      ? 'Checking your latest changes…'
      : 'Not complete yet:'
  const items = feedback.summary.map((line) => {
    const item = document.createElement('li')
    item.textContent = line
    return item
  })
  const list = document.createElement('ul')
  list.append(...items)
  box.replaceChildren(head, list)
  box.dataset.complete = String(complete)
}

// -- saving -----------------------------------------------------------------------------------

const payload = () =>
  sorted().map((seg) => ({
    start_ms: seg.start,
    end_ms: seg.end,
    label: seg.label,
    transcription: seg.transcription,
    attributes: seg.attributes,
  }))
const isDirty = () => JSON.stringify(payload()) !== state.savedJson

function drawSaveState(failure) {
  const badge = $('#save-state')
  let kind = 'saved'
  let text = 'Saved'
  if (failure) [kind, text] = ['error', `Not saved: ${failure}`]
  else if (state.saving) [kind, text] = ['saving', 'Saving…']
  else if (isDirty()) [kind, text] = ['dirty', '● Unsaved changes']
  badge.dataset.state = kind
  badge.textContent = text
}

function scheduleSave(delay = SAVE_DELAY_MS) {
  clearTimeout(state.saveTimer)
  drawSaveState()
  if (!state.finished) state.saveTimer = setTimeout(save, delay)
}

async function save() {
  clearTimeout(state.saveTimer)
  if (state.finished) return
  if (state.saving) {
    state.saveAgain = true
    return
  }
  const body = payload()
  const keys = sorted().map((seg) => seg.key) // the order the server numbers them in
  const json = JSON.stringify(body)
  if (json === state.savedJson) return drawSaveState()
  state.saving = true
  drawSaveState()
  let failure = null
  try {
    const reply = await api('PUT', '/annotations', { segments: body })
    state.savedJson = json
    state.feedback = reply.feedback
    state.feedbackKeys = keys
    drawFeedback()
  } catch (err) {
    if (err.status === 409 || err.status === 404 || err.status === 401) return refuseError(err)
    failure = err.message
    if (err.status !== 422) state.saveTimer = setTimeout(save, RETRY_MS) // 422: the work must change
  } finally {
    state.saving = false
    render()
    drawSaveState(failure)
    if (state.saveAgain) {
      state.saveAgain = false
      save()
    }
  }
}

async function saveNow() {
  while (state.saving) await new Promise((resolve) => setTimeout(resolve, 50))
  await save()
  while (state.saving) await new Promise((resolve) => setTimeout(resolve, 50))
  return !isDirty()
}

async function submit() {
  const button = $('#submit')
  button.disabled = true
  try {
    if (!(await saveNow())) {
      flash('Your latest changes could not be saved yet, so nothing was submitted.')
      return
    }
    await api('POST', '/submit')
    state.finished = true
    refuse('submitted', 'Submitted: thank you',
      'Your annotation was saved to the job and the job is complete. It will be reviewed; you can close this page.')
  } catch (err) {
    if (err.status === 409 && err.detail?.missing) {
      const first = err.detail.problems?.find((p) => p.segment)
      if (first) select(sorted()[first.segment - 1]?.key) // the first segment to fix
      flash(`Not submitted. Still missing: ${err.detail.missing.join('; ')}.`, { stay: true })
    } else if (err.status === 409 || err.status === 404 || err.status === 401) {
      refuseError(err)
    } else {
      flash(`Not submitted: ${err.message}`)
    }
  } finally {
    button.disabled = false
  }
}

// -- the waveform -----------------------------------------------------------------------------

async function fetchPeaks(zoom) {
  const doc = await api('GET', `/peaks?zoom=${zoom}`)
  const scale = doc.bits === 16 ? 32768 : 128
  const n = doc.length ?? doc.data.length / 2
  const top = new Float32Array(n)
  const bottom = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    bottom[i] = doc.data[2 * i] / scale
    top[i] = doc.data[2 * i + 1] / scale
  }
  return [top, bottom]
}

function zoomFor(pxPerSec) {
  // the coarsest peaks level that still gives at least one point per pixel
  const seconds = clipMs() / 1000
  const levels = state.info.peaks_zooms.filter((z) => z * seconds <= MAX_PEAK_POINTS).sort((a, b) => a - b)
  return levels.find((z) => z >= pxPerSec) || levels.at(-1) || state.info.peaks_zooms[0]
}

function sliderToPxPerSec(value) {
  const fit = $('#waveform').clientWidth / (clipMs() / 1000)
  return value <= 0 ? 0 : fit * Math.pow(1000 / Math.max(fit, 0.01), value / 100) // fit .. 1000 px/s
}

async function applyZoom() {
  const px = sliderToPxPerSec(Number($('#zoom').value))
  const effective = px || $('#waveform').clientWidth / (clipMs() / 1000)
  const wanted = zoomFor(effective)
  if (wanted > state.loadedZoom) {
    state.loadedZoom = wanted
    const peaks = await fetchPeaks(wanted)
    ws.setOptions({ peaks, duration: clipMs() / 1000 })
  }
  ws.zoom(px)
}

function createWave(peaks) {
  const info = state.info
  const minimap = MinimapPlugin.create({ container: '#minimap', height: 36, waveColor: '#b8c6db', progressColor: '#6d86ad', normalize: true })
  ws = WaveSurfer.create({
    container: '#waveform',
    height: 150,
    url: `${root}${info.audio_url}`,
    peaks,
    duration: info.clip_ms / 1000,
    normalize: true,
    waveColor: '#8aa4c8',
    progressColor: '#3b5b8c',
    cursorColor: '#d6336c',
    cursorWidth: 2,
    autoScroll: true,
    autoCenter: false,
    dragToSeek: false,
    plugins: [
      TimelinePlugin.create({ height: 18 }),
      minimap,
    ],
  })
  regions = ws.registerPlugin(RegionsPlugin.create())
  regions.enableDragSelection({ color: 'rgba(47, 111, 222, 0.2)' })
  regions.on('region-created', (region) => {
    if (byKey(region.id)) return // drawn from the model
    const start = snapMs(Math.round(region.start * 1000))
    const end = snapMs(Math.round(region.end * 1000))
    region.remove()
    if (end - start >= 10) addSegment(start, end)
  })
  regions.on('region-updated', (region, side) => {
    const seg = byKey(region.id)
    if (!seg) return
    let start = Math.round(region.start * 1000)
    let end = Math.round(region.end * 1000)
    if (side !== 'end') start = snapMs(start)
    if (side !== 'start') end = snapMs(end)
    if (!side) end = start + (seg.end - seg.start) // a move keeps the length
    state.selected = seg.key
    if (!commit(() => place(seg, start, end))) {
      drawnRegions.delete(seg.key) // refused: the region goes back to where the data says
      drawRegions()
    }
  })
  regions.on('region-clicked', (region, event) => {
    event.stopPropagation()
    select(region.id)
  })
  regions.on('region-double-clicked', (region) => region.play(true))
  regions.on('region-out', (region) => {
    if ($('#loop').checked && region.id === state.selected && ws.isPlaying()) region.play()
  })
  ws.on('decode', () => drawRegions())
  let pending = 0
  const redrawSoon = () => {
    cancelAnimationFrame(pending)
    pending = requestAnimationFrame(drawRegions)
  }
  ws.on('scroll', redrawSoon)
  ws.on('zoom', redrawSoon)
  showClock()
  const follow = (seconds) => {
    state.playhead = Math.round(seconds * 1000)
    showClock()
  }
  ws.on('audioprocess', follow) // while playing
  ws.on('interaction', follow) // a click or drag on the waveform
  minimap.on('interaction', follow) // or on the minimap (it seeks the audio itself)
  ws.on('play', () => ($('#play').textContent = '❚❚ Pause'))
  ws.on('pause', () => ($('#play').textContent = '▶ Play'))
  ws.on('error', (err) => flash(`Audio: ${err.message || err}`))
  return new Promise((resolve) => ws.once('redrawcomplete', resolve))
}

// -- controls and keys -------------------------------------------------------------------------

function bindControls() {
  $('#play').addEventListener('click', () => ws.playPause())
  $('#back').addEventListener('click', () => seek(nowMs() - 5000))
  $('#forward').addEventListener('click', () => seek(nowMs() + 5000))
  $('#play-region').addEventListener('click', playSelected)
  $('#speed').addEventListener('change', (e) => ws.setPlaybackRate(Number(e.target.value), true))
  $('#volume').addEventListener('input', (e) => ws.setVolume(Number(e.target.value)))
  $('#zoom').addEventListener('input', () => applyZoom())
  $('#amplitude').addEventListener('input', (e) => ws.setOptions({ barHeight: Number(e.target.value) }))
  $('#submit').addEventListener('click', submit)
  $('#help-button').addEventListener('click', () => $('#help').showModal())
  $('#split').addEventListener('click', splitSelected)
  $('#merge').addEventListener('click', mergeSelected)
  $('#delete').addEventListener('click', deleteSelected)
  $('#undo').addEventListener('click', undo)
  $('#redo').addEventListener('click', redo)
  $('#editor-form').addEventListener('submit', (e) => e.preventDefault())
  const seconds = (input) => Math.round(Number(input.value) * 1000)
  $('#seg-start').addEventListener('change', (e) => setEdge('start', seconds(e.target)))
  $('#seg-end').addEventListener('change', (e) => setEdge('end', seconds(e.target)))
  $('#seg-label').addEventListener('change', (e) => setLabel(e.target.value))
  const text = $('#seg-text')
  text.lang = state.info.language
  text.addEventListener('input', () => {
    const seg = byKey(state.selected)
    if (!seg) return
    const first = state.textEditKey !== seg.key
    state.textEditKey = seg.key
    commit(() => {
      seg.transcription = text.value
      return null
    }, { coalesce: !first })
  })
  text.addEventListener('blur', () => (state.textEditKey = null))
  window.addEventListener('beforeunload', (e) => {
    if (!state.finished && isDirty()) {
      save()
      e.preventDefault()
    }
  })
  document.addEventListener('keydown', onKey)
  // A control used with the mouse gives the keyboard back: Space, arrows and letters are the
  // page's keys again, not the last button's, checkbox's or slider's.
  document.addEventListener('click', (e) => {
    const button = e.target.closest?.('button')
    if (button && e.detail > 0 && !button.closest('dialog')) button.blur() // a mouse click
  })
  document.addEventListener('change', (e) => {
    if (e.target.matches?.('.transport select, .transport input')) e.target.blur()
  })
}

function playSelected() {
  const region = regions.getRegions().find((r) => r.id === state.selected)
  if (region) region.play(!$('#loop').checked)
}

function onKey(e) {
  if (state.finished) return
  const typing = e.target.closest?.('input, textarea, select')
  const ctrl = e.ctrlKey || e.metaKey
  if (ctrl && e.key === 'Enter') return e.preventDefault(), submit()
  if (ctrl && e.key.toLowerCase() === 's') return e.preventDefault(), save()
  if (typing) {
    if (e.key === 'Escape') e.target.blur()
    return
  }
  if ($('#help').open) return
  if (ctrl && e.key.toLowerCase() === 'z') return e.preventDefault(), e.shiftKey ? redo() : undo()
  if (ctrl && e.key.toLowerCase() === 'y') return e.preventDefault(), redo()
  if (ctrl || (e.altKey && !e.key.startsWith('Arrow'))) return
  const seg = byKey(state.selected)
  const actions = {
    ' ': () => ws.playPause(),
    Home: () => seek(0),
    End: () => seek(clipMs()),
    ArrowLeft: () => (e.altKey ? nudge(-1, e.shiftKey) : seek(nowMs() - (e.shiftKey ? 5000 : 100))),
    ArrowRight: () => (e.altKey ? nudge(1, e.shiftKey) : seek(nowMs() + (e.shiftKey ? 5000 : 100))),
    ArrowUp: () => (e.shiftKey ? stepInput('#amplitude', 1) : selectNeighbour(-1)),
    ArrowDown: () => (e.shiftKey ? stepInput('#amplitude', -1) : selectNeighbour(1)),
    Enter: () => seg && $('#seg-text').focus(),
    Escape: () => select(null, { seek: false }),
    Delete: deleteSelected, // Backspace does not delete: it is the key for text, pressed by habit
    n: newSegmentAtPlayhead,
    '[': () => setEdge('start', nowMs()),
    ']': () => setEdge('end', nowMs()),
    s: splitSelected,
    m: mergeSelected,
    p: playSelected,
    l: () => ($('#loop').checked = !$('#loop').checked),
    g: () => ($('#snap').checked = !$('#snap').checked),
    '+': () => stepInput('#zoom', 10),
    '=': () => stepInput('#zoom', 10),
    '-': () => stepInput('#zoom', -10),
    '<': () => stepSelect('#speed', -1),
    '>': () => stepSelect('#speed', 1),
    '?': () => $('#help').showModal(),
  }
  let action = actions[e.key] || actions[e.key.toLowerCase()]
  if (/^[1-9]$/.test(e.key)) {
    const label = state.info.labels[Number(e.key) - 1]
    if (label) action = () => setLabel(label.name)
  }
  if (!action) return
  e.preventDefault()
  action()
}

function nudge(direction, startSide) {
  const seg = byKey(state.selected)
  if (!seg) return
  const side = startSide ? 'start' : 'end'
  setEdge(side, seg[side] + direction * NUDGE_MS)
}

function stepInput(selector, step) {
  const input = $(selector)
  input.value = String(Math.min(Number(input.max), Math.max(Number(input.min), Number(input.value) + step * Number(input.step))))
  input.dispatchEvent(new Event('input'))
}

function stepSelect(selector, step) {
  const select = $(selector)
  select.selectedIndex = Math.min(select.options.length - 1, Math.max(0, select.selectedIndex + step))
  select.dispatchEvent(new Event('change'))
}

function buildLabelBar() {
  const bar = $('#labels')
  const choice = $('#seg-label')
  state.info.labels.forEach((label, index) => {
    const button = document.createElement('button')
    button.type = 'button'
    button.dataset.label = label.name
    button.style.setProperty('--label-color', colorOf(label.name))
    button.textContent = index < 9 ? `${index + 1} ${label.name}` : label.name
    button.addEventListener('click', () => setLabel(label.name))
    bar.append(button)
    choice.append(new Option(label.name, label.name))
  })
}

function showExpiry() {
  const ends = Date.parse(state.info.expires_at)
  const tick = () => {
    const left = ends - Date.now()
    if (left <= 0) return refuseStatus('expired', state.info.expires_at)
    const minutes = Math.floor(left / 60_000)
    $('#expires').textContent = `${minutes >= 60 ? `${Math.floor(minutes / 60)} h ${minutes % 60} min` : `${minutes} min`} left`
    setTimeout(tick, Math.min(30_000, left))
  }
  tick()
}

// -- start ------------------------------------------------------------------------------------

async function main() {
  if (!token) {
    return refuse('signin', 'Open this page from HUMAN App',
      'The link you followed does not carry your sign-in. Open the assignment again from HUMAN App.')
  }
  let info
  try {
    info = await api('GET', '/annotations')
  } catch (err) {
    return refuseError(err)
  }
  performance.mark('annotate-info')
  if (info.status !== 'active') return refuseStatus(info.status, info.expires_at)
  if (Date.parse(info.expires_at) <= Date.now()) return refuseStatus('expired', info.expires_at)
  state.info = info
  state.defaultLabel = info.labels[0].name
  state.segs = info.segments.map((seg) => ({
    key: `s${nextKey++}`,
    start: seg.start_ms,
    end: seg.end_ms,
    label: seg.label,
    transcription: seg.transcription || '',
    attributes: { ...seg.attributes },
  }))
  state.savedJson = JSON.stringify(payload())
  state.feedback = info.feedback
  state.feedbackKeys = state.segs.map((seg) => seg.key) // in the order the server checked them
  $('#job-title').textContent = info.description || 'Audio annotation'
  if (info.user_guide_url) {
    $('#guide').href = info.user_guide_url
    $('#guide').hidden = false
  }
  $('#loading').hidden = true
  $('#app').hidden = false
  buildLabelBar()
  bindControls()
  const fit = $('#waveform').clientWidth / (info.clip_ms / 1000)
  state.loadedZoom = zoomFor(fit)
  const peaks = await fetchPeaks(state.loadedZoom)
  performance.mark('annotate-peaks')
  const drawn = createWave(peaks)
  render()
  performance.mark('annotate-rendered')
  drawFeedback()
  showExpiry()
  await drawn
  document.body.dataset.state = 'ready'
  performance.mark('annotate-ready')
}

main().catch((err) => refuse('error', 'Something went wrong on this page', String(err?.message || err)))
