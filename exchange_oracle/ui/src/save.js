// Autosave through the oracle to CVAT, its badge, and submitting.
import { api, refuse, refuseError } from './api.js'
import { $, RETRY_MS, SAVE_DELAY_MS, flash, practising, sorted, sourceOf, state } from './core.js'
import { submitPractice } from './practice.js'
import { drawFeedback, render } from './draw.js'
import { select } from './segments.js'

// -- saving -----------------------------------------------------------------------------------

export const payload = () =>
  sorted().map((seg) => ({
    start_ms: seg.start,
    end_ms: seg.end,
    label: seg.label,
    transcription: seg.transcription,
    attributes: seg.attributes,
    source: sourceOf(seg),
  }))
export const isDirty = () => JSON.stringify(payload()) !== state.savedJson

export function drawSaveState(failure) {
  const badge = $('#save-state')
  let kind = 'saved'
  let text = 'Saved'
  if (practising()) [kind, text] = ['practice', 'Practice: checked when you submit']
  else if (failure) [kind, text] = ['error', `Not saved: ${failure}`]
  else if (state.saving) [kind, text] = ['saving', 'Saving…']
  else if (isDirty()) [kind, text] = ['dirty', '● Unsaved changes']
  badge.dataset.state = kind
  badge.textContent = text
  return kind
}

export function scheduleSave(delay = SAVE_DELAY_MS) {
  clearTimeout(state.saveTimer)
  drawSaveState()
  if (!state.finished && !practising()) state.saveTimer = setTimeout(save, delay)
}

export async function save() {
  clearTimeout(state.saveTimer)
  if (state.finished || practising()) return
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

export async function saveNow() {
  while (state.saving) await new Promise((resolve) => setTimeout(resolve, 50))
  await save()
  while (state.saving) await new Promise((resolve) => setTimeout(resolve, 50))
  return !isDirty()
}

export async function submit() {
  if (practising()) return submitPractice()
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
