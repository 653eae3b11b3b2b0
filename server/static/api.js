// The public API, and nothing else. URLs are relative to the page, so the studio works
// behind a reverse proxy on a sub-path (https://box/tft/ -> /tft/api/v1/...).

const KEY = 'tft.token';

export const token = {
  get: () => localStorage.getItem(KEY) || '',
  set: (value) => localStorage.setItem(KEY, value),
  clear: () => localStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The API's own sentence: {"detail": "..."} or the 422 list {"detail": [{"msg": ...}]}.
export function messageOf(status, body) {
  const detail = body && body.detail;
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail) && detail.length) return detail.map((d) => d.msg).join('; ');
  return status ? `the server answered ${status}` : 'the server cannot be reached';
}

const authHeaders = () => ({ Authorization: `Bearer ${token.get()}` });

async function failure(res) {
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  return new ApiError(res.status, messageOf(res.status, body));
}

export async function call(path, { method = 'GET', raw = false } = {}) {
  let res;
  try {
    res = await fetch(`api/v1/${path}`, { method, headers: authHeaders(), cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'the server cannot be reached');
  }
  if (!res.ok) throw await failure(res);
  return raw ? res : res.json();
}

// fetch() cannot report upload progress; XMLHttpRequest can.
export function upload(file, fields, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    form.append('file', file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', 'api/v1/transcriptions');
    xhr.setRequestHeader('Authorization', authHeaders().Authorization);
    xhr.responseType = 'json';
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      if (xhr.status === 201) resolve(xhr.response);
      else reject(new ApiError(xhr.status, messageOf(xhr.status, xhr.response)));
    };
    xhr.onerror = () => reject(new ApiError(0, 'the upload was interrupted: the server cannot be reached'));
    xhr.send(form);
  });
}

// The file name the server chose (Content-Disposition), RFC 6266 forms included.
export function filenameOf(res, fallback) {
  const header = res.headers.get('Content-Disposition') || '';
  const star = /filename\*=utf-8''([^;]+)/i.exec(header);
  if (star) return decodeURIComponent(star[1]);
  const plain = /filename="([^"]*)"/i.exec(header);
  return plain ? plain[1] : fallback;
}

export async function download(path, fallback) {
  const res = await call(path, { raw: true });
  const name = filenameOf(res, fallback);
  const url = URL.createObjectURL(await res.blob());
  const a = Object.assign(document.createElement('a'), { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  return name;
}
