// The annotator's page (entry point): a waveform drawn from the oracle's peaks, the clip
// streamed, segments as regions, and autosave through the oracle to CVAT. Modules: core
// (state), api, segments (the model), draw, save, wave, keys.
import './annotate.css'
import { api, refuse, refuseError, refuseStatus, token } from './api.js'
import { $, fingerprint, newKey, practising, state } from './core.js'
import { drawFeedback, render } from './draw.js'
import { bindControls, buildLabelBar, showExpiry } from './keys.js'
import { practiceOr, showPracticeBanner } from './practice.js'
import { payload } from './save.js'
import { createWave, fetchPeaks, zoomFor } from './wave.js'

// -- start ------------------------------------------------------------------------------------

export async function main() {
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
  if (info.status !== 'active') return refuseStatus(info.status, info.expires_at, info.reject_reason)
  if (Date.parse(info.expires_at) <= Date.now()) return refuseStatus('expired', info.expires_at)
  try {
    info = await practiceOr(info) // the escrow's practice clip first, when there is one to do
  } catch (err) {
    return refuseError(err)
  }
  if (!info) return
  state.info = info
  state.defaultLabel = info.labels[0].name
  state.segs = info.segments.map((seg) => ({
    key: newKey('s'),
    start: seg.start_ms,
    end: seg.end_ms,
    label: seg.label,
    transcription: seg.transcription || '',
    attributes: { ...seg.attributes },
    source: seg.source || 'manual',
  }))
  for (const seg of state.segs) seg.origin = fingerprint(seg) // as it came, to tell an edit
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
  if (practising()) showPracticeBanner()
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
