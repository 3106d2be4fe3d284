// The chat demo: every GPU call goes through the worker (CreateWorkerEngine). Loads the
// embedded model on open; the picker, a URL / Hub id, or a local folder (input or drop)
// reload it. The whole conversation is sent each turn; the engine reuses the shared prefix.
// Images (the Image… button, paste, or drop onto the page) go with the next message as
// OpenAI image parts; a vision-language model answers, a text-only one says INVALID_ARGUMENT.
import { CreateWorkerEngine, type WorkerEngine } from '../../src/api/client.ts';
import type { InitProgressReport } from '../../src/api/protocol.ts';
import { ChatSession, errorCode, errorText, formatStats, type UserContent } from '../embed/chat.ts';
import type { PopSetting } from '../../src/engine/pop.ts';
import catalogJson from './models.json';
import { ChatStore, type StoredTurn } from './chat_store.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  modelSelect: $<HTMLSelectElement>('model-select'),
  urlForm: $<HTMLFormElement>('url-form'),
  modelUrl: $<HTMLInputElement>('model-url'),
  folder: $<HTMLInputElement>('folder'),
  modelStatus: $('model-status'),
  progress: $('progress'),
  progressBar: $<HTMLProgressElement>('progress-bar'),
  progressText: $('progress-text'),
  error: $('error'),
  note: $('note'),
  messages: $('messages'),
  composer: $<HTMLFormElement>('composer'),
  popMode: $<HTMLSelectElement>('pop-mode'),
  keepLabel: $('keep-label'),
  popKeep: $<HTMLInputElement>('pop-keep'),
  popKeepValue: $<HTMLOutputElement>('pop-keep-value'),
  maxTokens: $<HTMLInputElement>('max-tokens'),
  reset: $<HTMLButtonElement>('reset'),
  prompt: $<HTMLTextAreaElement>('prompt'),
  imageInput: $<HTMLInputElement>('image-input'),
  attachments: $('attachments'),
  send: $<HTMLButtonElement>('send'),
  stop: $<HTMLButtonElement>('stop'),
  stats: $('stats'),
};

let engine: WorkerEngine | null = null;
let session: ChatSession | null = null;
// The conversation as shown, kept in IndexedDB as it streams (./chat_store.ts).
const store = new ChatStore();
let turns: StoredTurn[] = [];
let modelLabel = '';
const persist = () => void store.save({ model: modelLabel, turns });
let state: 'starting' | 'loading' | 'ready' | 'generating' | 'error' = 'starting';

function setState(s: typeof state): void {
  state = s;
  document.body.dataset.state = s;
  const loaded = !!session;
  ui.send.disabled = s !== 'ready' || !loaded;
  ui.stop.disabled = s !== 'generating';
  for (const el of [ui.modelSelect, ui.modelUrl, ui.folder, ui.reset]) el.disabled = s === 'loading' || s === 'generating';
}

/** Shows `CODE: message` and a hint; `imageNames` (the conversation's images, in order) names the file an image error is about. */
function showError(e: unknown, imageNames: string[] = []): void {
  const code = errorCode(e);
  ui.error.dataset.code = code;
  const index = (e as { fields?: { index?: unknown } } | null)?.fields?.index;
  const file = code.startsWith('IMAGE_') && typeof index === 'number' ? imageNames[index] : undefined;
  const hint = hintFor(code, (e as { message?: string } | null)?.message ?? '');
  ui.error.textContent = errorText(e) + (file ? ` (That is '${file}'.)` : '') + (hint ? ` ${hint}` : '');
  ui.error.hidden = false;
}
const HINTS: Record<string, string> = {
  GPU_OUT_OF_MEMORY: 'The model does not fit in this GPU: pick a smaller one.',
  DEVICE_LOST: 'Pick the model again to reload it.',
  WORKER_DIED: 'Pick the model again: it starts a fresh worker (the conversation is kept).',
  MALFORMED_WEIGHTS: 'The checkpoint holds NaN or infinite values: it is corrupt. Pick another model or download it again.',
  IMAGE_FETCH_FAILED: 'The image URL did not answer with an image; attach the file instead.',
  MODEL_NOT_FOUND: 'Hub models need a network connection; stories260K works offline.',
  IMAGE_DECODE_FAILED: 'That file is not an image this browser can decode: attach a PNG, JPEG, WebP or GIF. The conversation goes on without it.',
  IMAGE_TOO_LARGE: 'Attach a smaller image (fewer pixels). The conversation goes on without it.',
};
function hintFor(code: string, message: string): string | undefined {
  if (code === 'INVALID_ARGUMENT' && /image/i.test(message)) return 'Load a vision-language model (the SmolVLM, Qwen3-VL or Gemma 3 4B entries of the model menu) to send images; this message was not sent, and text messages still work.';
  return HINTS[code];
}
function clearError(): void {
  ui.error.hidden = true;
  ui.error.textContent = '';
  delete ui.error.dataset.code;
}

function onProgress(r: InitProgressReport): void {
  ui.progress.hidden = false;
  ui.progressBar.value = r.progress;
  ui.progressText.textContent = r.text;
}

/**
 * The model menu (models.json). `images`: a vision-language model (attach images to a message);
 * `quantization`: loaded int4 (the VLMs of billions of parameters would not fit in f32).
 */
interface CatalogEntry { id: string; label: string; size: string; offline?: boolean; images?: boolean; quantization?: 'q4' | 'q4-asym' }
const catalog = catalogJson as { default: string; models: CatalogEntry[] };

/** Loads a model by URL / Hub id, or from picked files; keeps one worker across loads. */
async function load(model: string | File[], label: string, quantization: 'none' | 'q4' | 'q4-asym' = 'none'): Promise<void> {
  if (state === 'loading' || state === 'generating') return;
  clearError();
  ui.note.hidden = true;
  setState('loading');
  session = null;
  ui.modelStatus.textContent = `Loading ${label}…`;
  onProgress({ progress: 0, timeElapsed: 0, text: 'Starting' } as InitProgressReport);
  try {
    if (engine) (engine.setInitProgressCallback(onProgress), await engine.reload(model, undefined, { quantization }));
    else engine = await CreateWorkerEngine(model, { initProgressCallback: onProgress, quantization });
    session = new ChatSession(engine);
    const L = engine.modelInfo?.layers ?? 1;
    ui.popKeep.max = String(L);
    ui.popKeep.value = String(Math.max(1, L - 1));
    ui.popKeepValue.textContent = ui.popKeep.value;
    const q = engine.modelInfo?.quantization ?? 'none';
    ui.modelStatus.textContent = `${label} · ${L} layers · context ${engine.modelInfo?.contextWindow ?? '?'}${q === 'none' ? '' : ` · ${q}`}`;
    ui.modelStatus.dataset.model = label;
    if (engine.templateNote) {
      ui.note.textContent = engine.templateNote;
      ui.note.hidden = false;
    }
    clearMessages();
    await restoreChat(label);
    setState('ready');
  } catch (e) {
    ui.modelStatus.textContent = `No model loaded (${label} failed)`;
    delete ui.modelStatus.dataset.model;
    ui.progressText.textContent = 'Load failed';
    showError(e);
    setState('error');
  }
}

/**
 * The stored conversation, if it was held with this model: bubbles and the session's history
 * rebuilt (a reply cut short by a reload or crash keeps its text up to the last stored token).
 */
async function restoreChat(label: string): Promise<void> {
  modelLabel = label;
  turns = [];
  const saved = await store.load();
  if (!saved || saved.model !== label || !session) return;
  for (const t of saved.turns) {
    if (t.role === 'user') {
      const images = (t.images ?? []).map((file) => ({ file, url: URL.createObjectURL(file) }));
      addMessage('user', t.text, images);
      session.history.push({ role: 'user', content: images.length ? [...images.map((a) => ({ type: 'image_url' as const, image_url: { url: a.file } })), ...(t.text ? [{ type: 'text' as const, text: t.text }] : [])] : t.text } as (typeof session.history)[number]);
    } else {
      const el = addMessage('assistant', t.text);
      el.dataset.restored = '1';
      if (t.partial) el.dataset.finish = 'interrupted';
      session.history.push({ role: 'assistant', content: t.text });
    }
    turns.push({ ...t, partial: false });
  }
  document.body.dataset.restored = String(turns.length);
  persist();
}

/** Object URLs of the thumbnails shown in messages (revoked with the messages). */
let messageUrls: string[] = [];

function clearMessages(): void {
  ui.messages.replaceChildren();
  ui.stats.textContent = '';
  for (const u of messageUrls) URL.revokeObjectURL(u);
  messageUrls = [];
}

function thumb(url: string, alt: string): HTMLImageElement {
  const img = document.createElement('img');
  img.className = 'thumb';
  img.src = url;
  img.alt = alt;
  return img;
}

function addMessage(role: 'user' | 'assistant', text: string, images: Attachment[] = []): HTMLElement {
  const el = document.createElement('div');
  el.className = `msg ${role}`;
  el.dataset.role = role;
  if (images.length) {
    const row = document.createElement('div');
    row.className = 'images';
    for (const a of images) row.append(thumb(a.url, a.file.name));
    messageUrls.push(...images.map((a) => a.url));
    const body = document.createElement('span');
    body.textContent = text;
    el.append(row, body);
    el.dataset.images = String(images.length);
  } else el.textContent = text;
  ui.messages.append(el);
  el.scrollIntoView({ block: 'end' });
  return el;
}

// Images waiting to go with the next message.
interface Attachment { file: File; url: string }
let attached: Attachment[] = [];

const isImageFile = (f: File) => f.type.startsWith('image/') || /\.(png|jpe?g|gif|webp|bmp|avif|ico|svg)$/i.test(f.name);

/** Attaches files to the next message (any file: one the browser cannot decode gets IMAGE_DECODE_FAILED from the engine). */
function attach(files: File[]): void {
  for (const file of files) attached.push({ file, url: URL.createObjectURL(file) });
  renderAttachments();
  ui.prompt.focus();
}

function renderAttachments(): void {
  ui.attachments.replaceChildren(...attached.map((a, i) => {
    const box = document.createElement('div');
    box.className = 'attachment';
    box.dataset.name = a.file.name;
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.textContent = '×';
    remove.title = `Remove ${a.file.name}`;
    remove.addEventListener('click', () => {
      URL.revokeObjectURL(a.url);
      attached.splice(i, 1);
      renderAttachments();
    });
    box.append(thumb(a.url, a.file.name), remove);
    return box;
  }));
  ui.attachments.hidden = attached.length === 0;
}

function popSetting(): PopSetting {
  const m = ui.popMode.value;
  return m === 'keep' ? Number(ui.popKeep.value) : (m as PopSetting);
}

async function send(): Promise<void> {
  const text = ui.prompt.value.trim();
  if ((!text && !attached.length) || !session || state !== 'ready') return;
  clearError();
  ui.prompt.value = '';
  // Images first, then the text (as SmolVLM's examples order them).
  const images = attached;
  attached = [];
  renderAttachments();
  const content: UserContent = images.length
    ? [...images.map((a) => ({ type: 'image_url' as const, image_url: { url: a.file } })), ...(text ? [{ type: 'text' as const, text }] : [])]
    : text;
  // The engine numbers images across the whole conversation: name them for its errors.
  const imageNames = [...session.history.flatMap((m) => (Array.isArray(m.content) ? m.content : []).filter((p) => p.type === 'image_url').map((p) => {
    const url = (p as { image_url: { url: unknown } }).image_url.url;
    return url instanceof File ? url.name : 'an earlier image';
  })), ...images.map((a) => a.file.name)];
  const user = addMessage('user', text, images);
  const out = addMessage('assistant', '');
  const reply: StoredTurn = { role: 'assistant', text: '', partial: true };
  turns.push({ role: 'user', text, images: images.map((a) => a.file) }, reply);
  persist();
  out.classList.add('streaming');
  ui.stats.textContent = '';
  delete ui.stats.dataset.finish;
  setState('generating');
  try {
    const r = await session.send(content, { maxTokens: Number(ui.maxTokens.value) || undefined, pop: popSetting() }, (t) => {
      out.textContent = t;
      out.scrollIntoView({ block: 'end' });
      reply.text = t;
      persist();
    });
    reply.partial = false;
    persist();
    out.dataset.finish = r.finishReason;
    ui.stats.dataset.finish = r.finishReason;
    ui.stats.textContent = r.usage && r.finishReason !== 'abort' ? formatStats(r.usage) + ` · ${r.finishReason}` : 'Stopped.';
  } catch (e) {
    // The turn is not part of the conversation (ChatSession dropped it): say so on its bubble.
    out.remove();
    turns.splice(-2);
    persist();
    user.classList.add('failed');
    user.dataset.failed = errorCode(e);
    showError(e, imageNames);
  } finally {
    out.classList.remove('streaming');
    setState('ready');
  }
}

// Model sources.
for (const m of catalog.models) {
  const o = document.createElement('option');
  o.value = m.id;
  o.textContent = `${m.label} · ${m.size}`;
  ui.modelSelect.append(o);
}
ui.modelSelect.value = catalog.default;
ui.modelSelect.addEventListener('change', () => void load(ui.modelSelect.value, ui.modelSelect.value, catalog.models.find((m) => m.id === ui.modelSelect.value)?.quantization));
ui.urlForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const v = ui.modelUrl.value.trim();
  if (v) void load(v, v);
});
ui.folder.addEventListener('change', () => {
  const files = [...(ui.folder.files ?? [])];
  if (files.length) void load(files, files[0].webkitRelativePath.split('/')[0] || 'local folder');
  ui.folder.value = '';
});
document.addEventListener('dragover', (ev) => {
  ev.preventDefault();
  document.body.classList.add('dragging');
});
document.addEventListener('dragleave', () => document.body.classList.remove('dragging'));
document.addEventListener('drop', async (ev) => {
  ev.preventDefault();
  document.body.classList.remove('dragging');
  // Image files (no folder) are attached to the next message; anything else is a model folder.
  const dt = ev.dataTransfer;
  const top = dt ? [...dt.files] : [];
  const folder = dt ? [...dt.items].some((i) => i.webkitGetAsEntry?.()?.isDirectory) : false;
  if (top.length && !folder && top.every(isImageFile)) return attach(top);
  const files = await droppedFiles(dt);
  if (files.length) void load(files, 'dropped folder');
});
ui.imageInput.addEventListener('change', () => {
  const files = [...(ui.imageInput.files ?? [])];
  ui.imageInput.value = '';
  if (files.length) attach(files);
});
// Paste an image (a screenshot, a copied file) anywhere on the page.
document.addEventListener('paste', (ev) => {
  const files = [...(ev.clipboardData?.files ?? [])].filter(isImageFile);
  if (!files.length) return;
  ev.preventDefault();
  attach(files);
});

/** Every file in what was dropped, walking into folders. */
async function droppedFiles(dt: DataTransfer | null): Promise<File[]> {
  if (!dt) return [];
  const entries = [...dt.items].map((i) => i.webkitGetAsEntry()).filter((e): e is FileSystemEntry => !!e);
  if (!entries.length) return [...dt.files];
  const out: File[] = [];
  const walk = async (e: FileSystemEntry): Promise<void> => {
    if (e.isFile) out.push(await new Promise<File>((res, rej) => (e as FileSystemFileEntry).file(res, rej)));
    else if (e.isDirectory) {
      const reader = (e as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((res, rej) => reader.readEntries(res, rej));
        if (!batch.length) break;
        for (const c of batch) await walk(c);
      }
    }
  };
  for (const e of entries) await walk(e);
  return out;
}

// Chat controls.
ui.composer.addEventListener('submit', (ev) => {
  ev.preventDefault();
  void send();
});
ui.prompt.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey) {
    ev.preventDefault();
    void send();
  }
});
ui.stop.addEventListener('click', () => session?.stop());
ui.reset.addEventListener('click', () => {
  clearMessages();
  turns = [];
  persist();
  void session?.reset(); // reaches the worker before any later request
});
ui.popMode.addEventListener('change', () => (ui.keepLabel.hidden = ui.popMode.value !== 'keep'));
ui.popKeep.addEventListener('input', () => (ui.popKeepValue.textContent = ui.popKeep.value));

// Start: no WebGPU means nothing can run; say so before starting a worker.
if (!('gpu' in navigator) || !navigator.gpu) {
  showError({ code: 'NO_WEBGPU', message: 'WebGPU is not available in this browser. Use a recent Chrome or Edge over http://localhost or https, or enable WebGPU in your browser flags.' });
  ui.modelStatus.textContent = 'No WebGPU';
  setState('error');
} else {
  void load(catalog.default, 'stories260K');
}
