// Drawing from the state: regions in view, the strip of every segment, the list, the
// editor, labels and the completeness feedback. Each draws only what changed.
import { $, MAX_REGIONS, byKey, clipMs, clock, colorOf, labelOf, sorted, sourceOf, state } from './core.js'
import { drawSaveState, isDirty } from './save.js'
import { commit, select } from './segments.js'
import { regions, ws } from './wave.js'

// -- drawing --------------------------------------------------------------------------------

// What a segment lacks, checked here the moment it changes (the server confirms it on the
// next save, and checks what the page cannot: overlaps, lengths, values).
export function missingOf(seg) {
  const label = labelOf(seg.label)
  if (!label) return []
  const missing = label.transcription && !seg.transcription.trim() ? ['has no transcription'] : []
  for (const attribute of label.attributes) {
    if (attribute.required && !seg.attributes[attribute.name]) missing.push(`has no ${attribute.name}`)
  }
  return missing
}

export function problemsBySegment() {
  // While edits wait for the server, the page's own check; once saved, the server's. The
  // server numbers segments in the order they were saved: map its numbers to the
  // segments themselves, so a marker stays on its segment when others come or go.
  const out = new Map()
  if (isDirty() || state.saving || !state.feedback) {
    for (const seg of state.segs) {
      const missing = missingOf(seg)
      if (missing.length) out.set(seg.key, missing)
    }
    return out
  }
  for (const problem of state.feedback.problems || []) {
    const key = problem.segment && state.feedbackKeys[problem.segment - 1]
    if (key) out.set(key, [...(out.get(key) || []), problem.message])
  }
  return out
}

export function render() {
  if (!state.info) return
  drawRegions()
  drawList()
  drawEditor()
  drawLabels()
  drawFeedback(drawSaveState() !== 'saved') // one look at the unsaved edits serves both
  $('#undo').disabled = !state.undo.length
  $('#redo').disabled = !state.redo.length
}

// What each region and list row last showed, so a render touches only what changed: with
// thousands of segments (a two-hour clip) a full redraw per key press would lag.
export const drawnRegions = new Map() // key -> signature
export const drawnRows = new Map() // key -> {item, signature}
export let drawnOrder = ''

export function visibleSpan() {
  // [start, end] ms of the waveform in view, with half a screen either side
  const seconds = clipMs() / 1000
  const pxPerMs = ws.getWrapper().scrollWidth / clipMs()
  const width = ws.getWidth()
  const left = ws.getScroll()
  return seconds ? [(left - width / 2) / pxPerMs, (left + 1.5 * width) / pxPerMs] : [0, 0]
}

export function drawRegions() {
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
    const signature = `${seg.start}:${seg.end}:${color}:${seg.label}:${!!seg.locked}`
    const region = shown.get(seg.key)
    if (region && drawnRegions.get(seg.key) === signature) continue
    const params = {
      start: seg.start / 1000, end: seg.end / 1000, color, content: `${seg.locked ? '🔒 ' : ''}${seg.label || '?'}`,
      drag: !seg.locked, resize: !seg.locked,
    }
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

export function drawStrip() {
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

export function drawList() {
  const list = $('#segments')
  const problems = problemsBySegment()
  const order = sorted()
  const orderKey = order.map((seg) => seg.key).join(',')
  const rows = order.map((seg) => {
    const issues = problems.get(seg.key)
    const signature = [seg.start, seg.end, seg.label, seg.transcription, seg.key === state.selected, issues?.join('|'), sourceOf(seg), !!seg.locked].join('\u0000')
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

export function listButton(seg, issues) {
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
  const tag = (kind, text, title) => {
    const span = document.createElement('span')
    span.className = `tag ${kind}`
    span.textContent = text
    span.title = title
    button.append(span)
  }
  const source = sourceOf(seg)
  if (source === 'file') tag('suggested', 'suggested', "From the requester's existing annotations: keep it as it is, or correct it")
  else if (source === 'auto' && seg.transcription) tag('draft', 'draft', 'A machine draft: correct what you hear')
  if (seg.locked) tag('locked', '🔒', 'Locked: K unlocks it')
  button.addEventListener('click', () => select(seg.key))
  return button
}

export function drawEditor() {
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
  text.lang = seg.attributes.language || state.info.language // per-segment language, when the job has them
  for (const input of form.querySelectorAll('input, select, textarea')) {
    if (input.tagName === 'SELECT') input.disabled = !!seg.locked
    else input.readOnly = !!seg.locked
  }
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

export function attributeField(attribute) {
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
  if (attribute.values.length) input.title = `Shift+1…${Math.min(9, attribute.values.length)}: ${attribute.values.slice(0, 9).join(', ')}`
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

export function drawLabels() {
  const seg = byKey(state.selected)
  const current = seg ? seg.label : state.defaultLabel
  const count = new Map()
  const total = new Map()
  for (const s of state.segs) {
    count.set(s.label, (count.get(s.label) || 0) + 1)
    total.set(s.label, (total.get(s.label) || 0) + s.end - s.start)
  }
  for (const button of $('#labels').children) {
    const name = button.dataset.label
    button.classList.toggle('active', name === current)
    const tally = button.querySelector('.tally')
    if (tally) tally.textContent = `${count.get(name) || 0} · ${clock(total.get(name) || 0)}`
  }
}

let drawnFeedback = null // [feedback, pending] last drawn: most renders change neither

export function drawFeedback(pending = isDirty() || state.saving) {
  // pending: the server has not checked the latest edits yet
  const box = $('#feedback')
  const feedback = state.feedback
  // Unsaved edits: what the page finds missing at once, the server's word after the save.
  const lacking = pending ? state.segs.filter((seg) => missingOf(seg).length).length : 0
  if (!feedback || (drawnFeedback?.[0] === feedback && drawnFeedback[1] === pending && drawnFeedback[2] === lacking)) return
  drawnFeedback = [feedback, pending, lacking]
  const complete = feedback.complete && !pending
  const head = document.createElement('p')
  head.className = complete ? 'ok' : 'warn'
  head.textContent = complete
    ? `Complete: ${feedback.segments} segment${feedback.segments === 1 ? '' : 's'} ready to submit.`
    : lacking
      ? 'Not complete yet:'
      : pending
        ? 'Checking your latest changes…'
        : 'Not complete yet:'
  const summary = lacking ? [`${lacking} of ${state.segs.length} segments lack a transcription or a required attribute (checked here; the server confirms on save)`] : feedback.summary
  const items = summary.map((line) => {
    const item = document.createElement('li')
    item.textContent = line
    return item
  })
  const list = document.createElement('ul')
  list.append(...items)
  box.replaceChildren(head, list)
  box.dataset.complete = String(complete)
}
