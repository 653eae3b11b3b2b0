// The studio page: token, uploads, the jobs list (polled), and the player with downloads.

import { call, download, token, upload } from './api.js';
import { $, el } from './dom.js';
import { Player, clock } from './player.js';

const FORMATS = [['txt', 'TXT'], ['srt', 'SRT'], ['vtt', 'VTT'], ['lrc', 'LRC'], ['lrc_plain', 'LRC plain'],
  ['json', 'JSON']];
const ACTIVE = new Set(['pending', 'processing']);
const OPTIONS_KEY = 'tft.options';
const POLL_ACTIVE_MS = 1500, POLL_IDLE_MS = 15000, POLL_HIDDEN_MS = 60000;

const jobs = new Map(); // job id -> { data, node }
const player = new Player($('#audio'), $('#lines'));
let uploading = 0, queue = Promise.resolve();
let pollTimer = 0, failures = 0, openId = null, relinked = false;

const say = (message) => { $('#live').textContent = message; };
function banner(message) {
  $('#banner').textContent = message || '';
  $('#banner').hidden = !message;
}

// -- token ---------------------------------------------------------------------------------

function showToken(message = '') {
  $('#token-panel').hidden = false;
  $('#studio').hidden = true;
  $('#account').hidden = true;
  $('#token-error').textContent = message;
  $('#token').focus();
}

async function signIn() {
  let me;
  try {
    me = await call('me');
  } catch (e) {
    if (e.status === 401) {
      token.clear();
      return showToken(`The server refused this token: ${e.message}`);
    }
    banner(`Cannot reach the server (${e.message}); retrying in 5 s.`);
    return setTimeout(signIn, 5000);
  }
  banner('');
  $('#token-panel').hidden = true;
  $('#studio').hidden = false;
  $('#account').hidden = false;
  $('#who').textContent = `${me.name} · ${me.unlimited ? 'unlimited credits' : `${me.credits} credits`}`;
  await loadCapabilities();
  await poll();
  const wanted = /job=([0-9a-f-]{36})/.exec(location.hash);
  if (wanted && jobs.get(wanted[1])?.data.status === 'done') open(wanted[1], false);
}

function signOut(message = '') {
  clearTimeout(pollTimer);
  token.clear();
  closePlayer();
  jobs.clear();
  $('#jobs').replaceChildren();
  showToken(message);
}

$('#token-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const value = $('#token').value.trim();
  if (!value) return;
  token.set(value);
  $('#token').value = '';
  signIn();
});
$('#forget').addEventListener('click', () => signOut('Token forgotten: it is no longer stored in this browser.'));

// -- options -------------------------------------------------------------------------------

async function loadCapabilities() {
  const select = $('#opt-language');
  try {
    const caps = await call('capabilities');
    let names = null;
    try { names = new Intl.DisplayNames([navigator.language, 'en'], { type: 'language' }); } catch { /* old browser */ }
    const label = (code) => { try { return names ? `${names.of(code)} (${code})` : code; } catch { return code; } };
    const options = caps.languages.map((code) => [label(code), code]).sort((a, b) => a[0].localeCompare(b[0]));
    select.replaceChildren(el('option', { value: '' }, 'Detect'), ...options.map(([text, code]) => el('option', { value: code }, text)));
    const installed = caps.separation && caps.separation.separators;
    if (Array.isArray(installed)) {
      for (const option of $('select[name=separator]').options) {
        if (option.value !== 'auto' && !installed.includes(option.value)) {
          option.disabled = true;
          option.textContent += ' (not installed)';
        }
      }
    }
  } catch (e) {
    banner(`Could not read the server's capabilities: ${e.message}`);
  }
  restoreOptions();
}

function restoreOptions() {
  let saved = {};
  try { saved = JSON.parse(localStorage.getItem(OPTIONS_KEY) || '{}'); } catch { /* ignore */ }
  for (const field of $('#options').elements) {
    if (!(field.name in saved)) continue;
    if (field.type === 'checkbox') field.checked = saved[field.name] === 'true';
    else if ([...(field.options || [])].some((o) => o.value === saved[field.name] && !o.disabled)) field.value = saved[field.name];
  }
}

function fields() {
  const out = {};
  for (const field of $('#options').elements) {
    if (field.name) out[field.name] = field.type === 'checkbox' ? String(field.checked) : field.value;
  }
  return out;
}

$('#options').addEventListener('change', () => localStorage.setItem(OPTIONS_KEY, JSON.stringify(fields())));

// -- uploads -------------------------------------------------------------------------------

function enqueue(files) {
  const options = fields();
  for (const file of files) {
    const bar = el('progress', { max: 1, value: 0 });
    const status = el('span', { class: 'status' }, 'waiting');
    const item = el('li', {}, el('span', { class: 'name' }, file.name), bar, status);
    $('#uploads').append(item);
    uploading += 1;
    queue = queue.then(() => send(file, options, item, bar, status));
  }
}

async function send(file, options, item, bar, status) {
  status.textContent = 'uploading';
  try {
    await upload(file, options, (fraction) => { bar.value = fraction; });
    bar.value = 1;
    status.textContent = 'queued';
    say(`${file.name} uploaded and queued`);
    setTimeout(() => item.remove(), 4000);
  } catch (e) {
    item.classList.add('failed');
    bar.remove();
    status.textContent = `refused: ${e.message}`;
    status.setAttribute('role', 'alert');
    item.append(el('button', { type: 'button', class: 'quiet', 'aria-label': `Dismiss the error for ${file.name}` }, '×'));
    item.lastChild.addEventListener('click', () => item.remove());
    if (e.status === 401) signOut(`The server refused the token: ${e.message}`);
  } finally {
    uploading -= 1;
    poll();
  }
}

$('#files').addEventListener('change', (e) => {
  enqueue([...e.target.files]);
  e.target.value = '';
});
const drop = $('#drop');
for (const type of ['dragenter', 'dragover']) {
  drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add('over'); });
}
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  enqueue([...e.dataTransfer.files]);
});
// A file dropped next to the zone must not make the browser navigate away from the page.
for (const type of ['dragover', 'drop']) document.addEventListener(type, (e) => e.preventDefault());

// -- jobs ----------------------------------------------------------------------------------

async function poll() {
  clearTimeout(pollTimer);
  if (!token.get()) return;
  try {
    const list = await call('transcriptions?per_page=100');
    render(list.items);
    failures = 0;
    banner('');
  } catch (e) {
    if (e.status === 401) return signOut(`The server refused the token: ${e.message}`);
    failures += 1;
    banner(`Cannot refresh the jobs (${e.message}); retrying.`);
  }
  if (!token.get()) return;
  const active = uploading > 0 || [...jobs.values()].some((j) => ACTIVE.has(j.data.status));
  clearTimeout(pollTimer); // two overlapping refreshes still leave one timer
  const delay = document.hidden ? POLL_HIDDEN_MS : active ? POLL_ACTIVE_MS : POLL_IDLE_MS;
  pollTimer = setTimeout(poll, Math.min(delay * 2 ** failures, 60000));
}
document.addEventListener('visibilitychange', () => { if (!document.hidden && token.get()) poll(); });

function render(items) {
  const seen = new Set();
  const list = $('#jobs');
  items.forEach((data, position) => {
    seen.add(data.job_id);
    let job = jobs.get(data.job_id);
    if (!job) {
      job = { node: jobNode(data.job_id) };
      jobs.set(data.job_id, job);
    } else if (job.data.status !== data.status && !ACTIVE.has(data.status)) {
      say(`${data.filename}: ${data.status}`);
    }
    job.data = data;
    fill(job);
    if (list.children[position] !== job.node) list.insertBefore(job.node, list.children[position] || null);
  });
  for (const [id, job] of jobs) {
    if (!seen.has(id)) {
      job.node.remove();
      jobs.delete(id);
      if (openId === id) closePlayer();
    }
  }
  $('#jobs-empty').hidden = jobs.size > 0;
}

function jobNode(id) {
  const node = el('li', { class: 'job', 'data-id': id },
    el('div', { class: 'head' }, el('button', { type: 'button', class: 'name' }), el('span', { class: 'badge' })),
    el('div', { class: 'progress' }, el('progress', { max: 1 }), el('span', { class: 'stage' })),
    el('p', { class: 'meta' }),
    el('p', { class: 'error' }),
    el('div', { class: 'actions' }, el('button', { type: 'button', class: 'remove quiet' })));
  node.querySelector('.name').addEventListener('click', () => open(id, true));
  node.querySelector('.remove').addEventListener('click', () => remove(id));
  return node;
}

function fill({ data, node }) {
  const active = ACTIVE.has(data.status);
  const name = node.querySelector('.name');
  name.textContent = data.filename;
  name.disabled = data.status !== 'done';
  name.title = data.status === 'done' ? 'Open in the player' : '';
  node.dataset.status = data.status;
  node.classList.toggle('open', openId === data.job_id);
  node.querySelector('.badge').textContent = data.status;
  const { stage, fraction } = data.progress;
  node.querySelector('.progress').hidden = !active;
  node.querySelector('progress').value = fraction;
  node.querySelector('.stage').textContent = data.status === 'pending' ? 'queued' : `${stage} · ${Math.round(fraction * 100)}%`;
  const meta = [data.audio_duration ? clock(data.audio_duration) : null, data.language,
    new Date(data.created_at).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' })];
  node.querySelector('.meta').textContent = meta.filter(Boolean).join(' · ');
  node.querySelector('.error').textContent = data.error ? data.error.message : '';
  const remove = node.querySelector('.remove');
  remove.textContent = active ? 'Cancel' : 'Delete';
  remove.setAttribute('aria-label', `${active ? 'Cancel' : 'Delete'} ${data.filename}`);
}

async function remove(id) {
  const job = jobs.get(id);
  if (!job) return;
  const { filename, status } = job.data;
  if (!ACTIVE.has(status) && !confirm(`Delete ${filename}, its audio and its transcripts from the server?`)) return;
  const next = job.node.nextElementSibling || job.node.previousElementSibling;
  try {
    const result = await call(`transcriptions/${id}`, { method: 'DELETE' });
    say(`${filename}: ${result.status}`);
    job.node.remove();
    jobs.delete(id);
    if (openId === id) closePlayer();
    (next?.querySelector('button:not([disabled])') || $('#jobs-h')).focus();
  } catch (e) {
    job.node.querySelector('.error').textContent = `Could not ${ACTIVE.has(status) ? 'cancel' : 'delete'}: ${e.message}`;
  }
  poll();
}

// -- player --------------------------------------------------------------------------------

const audioUrl = (id, link) => `api/v1/transcriptions/${id}/audio?expires=${link.expires}&signature=${encodeURIComponent(link.signature)}`;

async function open(id, focus) {
  const job = jobs.get(id);
  if (!job) return;
  openId = id;
  relinked = false;
  history.replaceState(null, '', `#job=${id}`);
  for (const other of jobs.values()) other.node.classList.toggle('open', other === job);
  $('#player').hidden = false;
  $('#player-h').textContent = job.data.filename;
  $('#player-error').textContent = '';
  $('#downloads').replaceChildren();
  if (focus) $('#player-h').focus();
  try {
    const [segments, link] = await Promise.all([call(`transcriptions/${id}/segments`),
      call(`transcriptions/${id}/audio/link`, { method: 'POST' })]);
    if (openId !== id) return;
    $('#audio').src = audioUrl(id, link);
    player.show(segments.segments, segments.language);
    downloads(id, segments.segments.some((s) => s.words && s.words.length), job.data.filename);
  } catch (e) {
    $('#player-error').textContent = `Cannot open ${job.data.filename}: ${e.message}`;
  }
}

function closePlayer() {
  openId = null;
  const audio = $('#audio');
  audio.pause();
  audio.removeAttribute('src');
  audio.load();
  $('#player').hidden = true;
  $('#lines').replaceChildren();
  for (const job of jobs.values()) job.node.classList.remove('open');
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
}

// An audio link lasts hours; if it ran out mid-listen, ask for a new one once and carry on.
$('#audio').addEventListener('error', async () => {
  const audio = $('#audio');
  if (!openId || !audio.getAttribute('src')) return;
  const id = openId, at = audio.currentTime;
  if (relinked) {
    $('#player-error').textContent = 'The audio cannot be played (it may have expired or been deleted).';
    return;
  }
  relinked = true;
  try {
    const link = await call(`transcriptions/${id}/audio/link`, { method: 'POST' });
    if (openId !== id) return;
    audio.src = audioUrl(id, link);
    audio.currentTime = at;
  } catch (e) {
    $('#player-error').textContent = `The audio cannot be played: ${e.message}`;
  }
});

function downloads(id, words, filename) {
  const box = $('#downloads');
  box.replaceChildren(el('span', { class: 'label' }, 'Download'));
  for (const [format, label] of FORMATS) {
    if (format === 'lrc_plain' && !words) continue; // without word timings, LRC is already plain
    const text = format === 'lrc' && words ? 'LRC (word-timed)' : label;
    const button = el('button', { type: 'button', 'data-format': format, 'aria-label': `Download ${text}` }, text);
    button.addEventListener('click', async () => {
      try {
        say(`Saved ${await download(`transcriptions/${id}/export?format=${format}`, `${filename}.${format}`)}`);
      } catch (e) {
        $('#player-error').textContent = `Could not download ${text}: ${e.message}`;
      }
    });
    box.append(button);
  }
}

if (token.get()) signIn(); else showToken();
