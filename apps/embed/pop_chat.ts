// <pop-chat model="..." pop="auto" max-tokens="128">: a minimal chat box over its own
// WorkerEngine (one worker per element). Its engine is `element.engine` once `ready` fires.
// Images (for a vision-language model): the Image… button attaches files to the next message,
// or `send(text, images)` from the page; they go as OpenAI image_url parts before the text.
// A text-only model refuses them (INVALID_ARGUMENT) and the conversation goes on.
import { CreateWorkerEngine, type WorkerEngine } from '../../src/api/client.ts';
import { ChatSession, errorCode, errorText, formatStats, parsePop, type UserContent } from './chat.ts';

/** An image a message can carry: a File / Blob, a URL (data: too), an ImageBitmap or an <img>. */
export type ChatImage = string | Blob | ImageBitmap | HTMLImageElement;

const STYLE = `
:host { display: block; font: 14px/1.4 system-ui, sans-serif; border: 1px solid #8884; border-radius: 8px; padding: 8px; max-width: 640px; }
.log { min-height: 120px; max-height: 360px; overflow-y: auto; display: flex; flex-direction: column; gap: 6px; margin-bottom: 8px; }
.msg { padding: 4px 8px; border-radius: 6px; white-space: pre-wrap; max-width: 90%; }
.user { align-self: flex-end; background: #2f6fdf; color: #fff; }
.assistant { align-self: flex-start; background: #8882; }
.row { display: flex; gap: 6px; }
textarea { flex: 1; font: inherit; }
.status, .stats { font-size: 12px; color: #888; margin-top: 4px; }
.error { color: #b00; font-size: 13px; }
.attachments { font-size: 12px; color: #888; }
.attachments:empty { display: none; }
input[type=file] { display: none; }
progress { width: 100%; height: 6px; }
`;

/** Defaults from the <script data-model data-pop> tag that loaded the bundle. */
export const popChatDefaults: { model?: string; pop?: string; maxTokens?: number } = {};

export class PopChatElement extends HTMLElement {
  engine: WorkerEngine | null = null;
  private session: ChatSession | null = null;
  private started = false;
  private attached: File[] = [];
  private readonly root = this.attachShadow({ mode: 'open' });
  private readonly el = {
    log: div('log', 'messages'),
    progress: Object.assign(document.createElement('progress'), { max: 1, value: 0 }),
    status: div('status', 'status'),
    error: div('error', 'error'),
    prompt: Object.assign(document.createElement('textarea'), { rows: 2, placeholder: 'Say something…' }),
    send: button('Send', 'send'),
    attach: button('Image…', 'attach'),
    imageInput: Object.assign(document.createElement('input'), { type: 'file', accept: 'image/*', multiple: true }),
    attachments: div('attachments', 'attachments'),
    stop: button('Stop', 'stop'),
    stats: div('stats', 'stats'),
  };

  constructor() {
    super();
    const style = document.createElement('style');
    style.textContent = STYLE;
    this.el.prompt.dataset.testid = 'prompt';
    this.el.imageInput.dataset.testid = 'image-input';
    const row = div('row');
    row.append(this.el.prompt, this.el.attach, this.el.imageInput, this.el.send, this.el.stop);
    this.root.append(style, this.el.log, this.el.progress, this.el.error, this.el.attachments, row, this.el.status, this.el.stats);
    this.el.attach.onclick = () => this.el.imageInput.click();
    this.el.imageInput.onchange = () => {
      this.attach([...(this.el.imageInput.files ?? [])]);
      this.el.imageInput.value = '';
    };
    this.el.send.onclick = () => void this.send();
    this.el.stop.onclick = () => this.session?.stop();
    this.el.prompt.onkeydown = (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey) {
        ev.preventDefault();
        void this.send();
      }
    };
    this.setBusy(true, false);
  }

  get model(): string {
    return this.getAttribute('model') ?? popChatDefaults.model ?? '';
  }

  connectedCallback(): void {
    if (this.started) return;
    this.started = true;
    void this.start();
  }

  disconnectedCallback(): void {
    // Moving the element keeps its engine; removing it for good ends the worker.
    queueMicrotask(() => {
      if (!this.isConnected) {
        this.engine?.terminate();
        this.engine = null;
        this.started = false;
      }
    });
  }

  private async start(): Promise<void> {
    const model = this.model;
    if (!model) return this.fail({ code: 'INVALID_ARGUMENT', message: 'no model: set the model attribute or data-model on the script tag' });
    if (!('gpu' in navigator) || !navigator.gpu) return this.fail({ code: 'NO_WEBGPU', message: 'WebGPU is not available in this browser (use a recent Chrome or Edge over https).' });
    this.state('loading');
    this.el.status.textContent = `Loading ${model}…`;
    try {
      this.engine = await CreateWorkerEngine(model, {
        initProgressCallback: (r) => {
          this.el.progress.value = r.progress;
          this.el.status.textContent = r.text;
        },
      });
      this.session = new ChatSession(this.engine);
      this.el.progress.hidden = true;
      this.el.status.textContent = `${model} ready` + (this.engine.templateNote ? ` · ${this.engine.templateNote}` : '');
      this.state('ready');
      this.setBusy(false, false);
      this.dispatchEvent(new CustomEvent('ready', { detail: { model } }));
    } catch (e) {
      this.fail(e);
    }
  }

  private fail(e: unknown): void {
    this.el.error.textContent = errorText(e);
    this.el.error.dataset.code = errorCode(e);
    this.el.progress.hidden = true;
    this.state('error');
    this.dispatchEvent(new CustomEvent('pop-error', { detail: e }));
  }

  private state(s: string): void {
    this.dataset.state = s;
  }

  private setBusy(sending: boolean, stoppable: boolean): void {
    this.el.send.disabled = sending;
    this.el.stop.disabled = !stoppable;
  }

  /** Image files for the next message (the Image… button calls this). */
  attach(files: File[]): void {
    this.attached.push(...files.filter((f) => f.type.startsWith('image/') || /\.(png|jpe?g|gif|webp|bmp|avif)$/i.test(f.name)));
    this.el.attachments.textContent = this.attached.length ? `Attached: ${this.attached.map((f) => f.name).join(', ')}` : '';
  }

  /**
   * Sends a message (also callable from the page) with `images` (default: the attached files)
   * before its text; resolves with the reply ('' when it failed: the error shows in the box).
   */
  async send(text = this.el.prompt.value.trim(), images: readonly ChatImage[] = this.attached): Promise<string> {
    if ((!text && !images.length) || !this.session || this.session.busy) return '';
    const content: UserContent = images.length ? [...images.map((url) => ({ type: 'image_url' as const, image_url: { url } })), ...(text ? [{ type: 'text' as const, text }] : [])] : text;
    this.el.prompt.value = '';
    this.el.error.textContent = '';
    if (images === this.attached) this.attached = [];
    this.el.attachments.textContent = '';
    const user = this.add('user', images.length ? `[${images.length === 1 ? 'image' : `${images.length} images`}]${text ? ' ' + text : ''}` : text);
    if (images.length) user.dataset.images = String(images.length);
    const out = this.add('assistant', '');
    this.setBusy(true, true);
    this.state('generating');
    try {
      const maxTokens = Number(this.getAttribute('max-tokens') ?? popChatDefaults.maxTokens ?? 128);
      const r = await this.session.send(content, { maxTokens, pop: parsePop(this.getAttribute('pop') ?? popChatDefaults.pop) }, (t) => (out.textContent = t));
      this.el.stats.textContent = r.usage && r.finishReason !== 'abort' ? formatStats(r.usage) : 'Stopped.';
      return r.reply;
    } catch (e) {
      out.remove();
      user.dataset.failed = errorCode(e);
      this.el.error.textContent = errorText(e);
      this.el.error.dataset.code = errorCode(e);
      return '';
    } finally {
      this.setBusy(false, false);
      this.state('ready');
    }
  }

  private add(role: 'user' | 'assistant', text: string): HTMLElement {
    const m = div(`msg ${role}`);
    m.dataset.role = role;
    m.textContent = text;
    this.el.log.append(m);
    m.scrollIntoView({ block: 'nearest' });
    return m;
  }
}

function div(cls: string, testid?: string): HTMLDivElement {
  const d = document.createElement('div');
  d.className = cls;
  if (testid) d.dataset.testid = testid;
  return d;
}

function button(text: string, testid: string): HTMLButtonElement {
  const b = document.createElement('button');
  b.textContent = text;
  b.dataset.testid = testid;
  return b;
}
