// The chat demo: every GPU call goes through the worker (CreateWorkerEngine). Loads the
// embedded model on open; the picker, a URL / Hub id, or a local folder (input or drop)
// reload it. The whole conversation is sent each turn; the engine reuses the shared prefix.
import { CreateWorkerEngine, type WorkerEngine } from '../api/client.ts';
import type { InitProgressReport } from '../api/protocol.ts';
import { ChatSession, errorCode, errorText, formatStats } from '../embed/chat.ts';
import type { PopSetting } from '../engine/pop.ts';
import catalog from './models.json';

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
  send: $<HTMLButtonElement>('send'),
  stop: $<HTMLButtonElement>('stop'),
  stats: $('stats'),
};

let engine: WorkerEngine | null = null;
let session: ChatSession | null = null;
let state: 'starting' | 'loading' | 'ready' | 'generating' | 'error' = 'starting';

function setState(s: typeof state): void {
  state = s;
  document.body.dataset.state = s;
  const loaded = !!session;
  ui.send.disabled = s !== 'ready' || !loaded;
  ui.stop.disabled = s !== 'generating';
  for (const el of [ui.modelSelect, ui.modelUrl, ui.folder, ui.reset]) el.disabled = s === 'loading' || s === 'generating';
}

function showError(e: unknown): void {
  const code = errorCode(e);
  ui.error.dataset.code = code;
  ui.error.textContent = errorText(e) + (HINTS[code] ? ` ${HINTS[code]}` : '');
  ui.error.hidden = false;
}
const HINTS: Record<string, string> = {
  GPU_OUT_OF_MEMORY: 'The model does not fit in this GPU: pick a smaller one.',
  DEVICE_LOST: 'Pick the model again to reload it.',
  WORKER_DIED: 'Reload the page.',
  MODEL_NOT_FOUND: 'Hub models need a network connection; stories260K works offline.',
};
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

/** Loads a model by URL / Hub id, or from picked files; keeps one worker across loads. */
async function load(model: string | File[], label: string): Promise<void> {
  if (state === 'loading' || state === 'generating') return;
  clearError();
  ui.note.hidden = true;
  setState('loading');
  session = null;
  ui.modelStatus.textContent = `Loading ${label}…`;
  onProgress({ progress: 0, timeElapsed: 0, text: 'Starting' } as InitProgressReport);
  try {
    if (engine) await engine.reload(model, { initProgressCallback: onProgress });
    else engine = await CreateWorkerEngine(model, { initProgressCallback: onProgress });
    session = new ChatSession(engine);
    const L = engine.modelInfo?.layers ?? 1;
    ui.popKeep.max = String(L);
    ui.popKeep.value = String(Math.max(1, L - 1));
    ui.popKeepValue.textContent = ui.popKeep.value;
    ui.modelStatus.textContent = `${label} · ${L} layers · context ${engine.modelInfo?.contextWindow ?? '?'}`;
    ui.modelStatus.dataset.model = label;
    if (engine.templateNote) {
      ui.note.textContent = engine.templateNote;
      ui.note.hidden = false;
    }
    clearMessages();
    setState('ready');
  } catch (e) {
    ui.modelStatus.textContent = `No model loaded (${label} failed)`;
    delete ui.modelStatus.dataset.model;
    ui.progressText.textContent = 'Load failed';
    showError(e);
    setState('error');
  }
}

function clearMessages(): void {
  ui.messages.replaceChildren();
  ui.stats.textContent = '';
}

function addMessage(role: 'user' | 'assistant', text: string): HTMLElement {
  const el = document.createElement('div');
  el.className = `msg ${role}`;
  el.dataset.role = role;
  el.textContent = text;
  ui.messages.append(el);
  el.scrollIntoView({ block: 'end' });
  return el;
}

function popSetting(): PopSetting {
  const m = ui.popMode.value;
  return m === 'keep' ? Number(ui.popKeep.value) : (m as PopSetting);
}

async function send(): Promise<void> {
  const text = ui.prompt.value.trim();
  if (!text || !session || state !== 'ready') return;
  clearError();
  ui.prompt.value = '';
  addMessage('user', text);
  const out = addMessage('assistant', '');
  out.classList.add('streaming');
  setState('generating');
  try {
    const r = await session.send(text, { maxTokens: Number(ui.maxTokens.value) || undefined, pop: popSetting() }, (t) => {
      out.textContent = t;
      out.scrollIntoView({ block: 'end' });
    });
    out.dataset.finish = r.finishReason;
    ui.stats.dataset.finish = r.finishReason;
    ui.stats.textContent = r.usage ? formatStats(r.usage) + ` · ${r.finishReason}` : 'Stopped.';
  } catch (e) {
    out.remove();
    showError(e);
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
ui.modelSelect.addEventListener('change', () => void load(ui.modelSelect.value, ui.modelSelect.value));
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
  const files = await droppedFiles(ev.dataTransfer);
  if (files.length) void load(files, 'dropped folder');
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
