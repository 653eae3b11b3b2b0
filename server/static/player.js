// The player: an <audio> element and the transcript as buttons, one per line. The line
// (and word) being heard is highlighted; a click or Enter on a line seeks to it.

import { el } from './dom.js';

const GAP_S = 1.0; // after a line ends, keep it lit this long (the LRC writer's clearing rule)

// Index of the last item whose start is <= t, or -1 (items sorted by start).
function lastStarted(items, t) {
  let lo = 0, hi = items.length - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (items[mid].start <= t) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return found;
}

export const clock = (s) => {
  const whole = Math.max(0, Math.floor(s));
  const h = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60), sec = String(whole % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
};

export class Player {
  constructor(audio, list) {
    this.audio = audio;
    this.list = list;
    this.lines = [];
    this.line = -1;
    this.word = null;
    this.frame = 0;
    const tick = () => this.update();
    audio.addEventListener('timeupdate', tick);
    audio.addEventListener('seeked', tick);
    audio.addEventListener('play', () => this.loop());
    list.addEventListener('click', (e) => {
      const button = e.target.closest('button.line');
      if (button) this.seek(Number(button.dataset.index));
    });
  }

  // segments: the API's /segments items; language: for lang attributes (pinyin, CJK fonts).
  show(segments, language) {
    this.list.replaceChildren();
    this.lines = segments.map((seg, index) => {
      const words = (seg.words || []).filter((w) => w.word.trim());
      const text = el('span', { class: 'text', lang: language || '' });
      // Whisper's words carry their leading space; keep it outside the span so the
      // highlight underlines the word only.
      const spans = words.map((w, i) => {
        if (i && /^\s/.test(w.word)) text.append(' ');
        return text.appendChild(el('span', { class: 'w' }, w.word.trim()));
      });
      if (!words.length) text.textContent = seg.text;
      const button = el('button', { type: 'button', class: 'line', 'data-index': index },
        el('span', { class: 't' }, clock(seg.start)), text);
      if (seg.pinyin) button.append(el('span', { class: 'py', lang: 'zh-Latn-pinyin' }, seg.pinyin));
      this.list.append(el('li', {}, button));
      return { start: seg.start, end: seg.end, button, words: words.map((w, i) => ({ ...w, span: spans[i] })) };
    });
    this.line = -1;
    this.word = null;
    this.update();
  }

  seek(index) {
    const line = this.lines[index];
    if (!line) return;
    this.audio.currentTime = line.start;
    this.update();
    this.audio.play().catch(() => { /* autoplay refused: the position is set all the same */ });
  }

  loop() {
    cancelAnimationFrame(this.frame);
    const step = () => {
      this.update();
      if (!this.audio.paused) this.frame = requestAnimationFrame(step);
    };
    this.frame = requestAnimationFrame(step);
  }

  update() {
    const t = this.audio.currentTime;
    let index = lastStarted(this.lines, t);
    if (index >= 0 && t > this.lines[index].end + GAP_S) index = -1;
    if (index !== this.line) {
      if (this.line >= 0) this.lines[this.line].button.removeAttribute('aria-current');
      this.line = index;
      if (index >= 0) {
        this.lines[index].button.setAttribute('aria-current', 'true');
        this.reveal(this.lines[index].button);
      }
      this.lines.forEach((line, i) => line.button.classList.toggle('past', line.end < t && i !== index));
    }
    const words = index >= 0 ? this.lines[index].words : [];
    const w = lastStarted(words, t);
    const span = w >= 0 ? words[w].span : null;
    if (span !== this.word) {
      if (this.word) this.word.classList.remove('on');
      if (span) span.classList.add('on');
      this.word = span;
    }
  }

  // Keep the current line in view inside the list, without moving the page.
  reveal(button) {
    const list = this.list;
    const top = button.offsetTop - list.offsetTop;
    if (top < list.scrollTop || top + button.offsetHeight > list.scrollTop + list.clientHeight) {
      list.scrollTop = top - list.clientHeight / 3;
    }
  }
}
