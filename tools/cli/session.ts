// The CLI's link to the engine. The Chromium host (default): the Vite dev server serves the
// project (cli.html), headless chromium runs it on WebGPU, and a small static server on
// 127.0.0.1 serves local model folders; calls go through page.evaluate. The Node host
// (tools/node/node_host.ts): the same page code in a Node process on Dawn. Either way calls
// come back as {ok} | {error: {code, ...}}.
import { createServer, type Server } from 'node:http';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { extname, resolve, sep } from 'node:path';
import type { Browser, Page } from 'playwright';
import type { ViteDevServer } from 'vite';
import { ModelFileMissingError, PopError } from '../../src/errors.ts';
import { isHubId } from '../../src/model/source.ts';
import { launchChromium, openPage, startServer } from '../node/browser.ts';
import { startNodeEngine, type Host } from '../node/node_host.ts';
import { withGemma3Tokens, withIdefics3Tokens, withQwen3VlTokens } from '../../src/vision/random_vlm.ts';
import { cachedCalibration } from './calibration_file.ts';
import type { PopQualityRequest, PopQualityRow, CalibrateReply, CalibrateRequest, CliErrorInfo, GemmReply, GemmShape, GenerateReply, GenerateRequest, ImagePromptReply, ImagePromptRequest, LoadRequest, ModelInfo, ModelSpec, Reply, EngineLink } from './protocol.ts';

/** Where a random SmolVLM without a tokenizer of its own borrows one: its text model, SmolLM2-135M. */
const SMOLVLM_TEXT_TOKENIZER = 'HuggingFaceTB__SmolLM2-135M-Instruct';
const STORIES_TOKENIZER = 'public/models/stories260K/tokenizer.json';

/** An error that came out of the page (or the CLI itself), with its PopError code. */
export class CliError extends Error {
  constructor(readonly code: string, message: string, readonly fields: Record<string, unknown> = {}) {
    super(message);
  }
  static from(e: unknown): CliError {
    if (e instanceof CliError) return e;
    if (e instanceof PopError) return new CliError(e.code, e.message, e.fields);
    const err = e as { code?: unknown; message?: unknown };
    return new CliError(typeof err?.code === 'string' ? err.code : 'INTERNAL_ERROR', typeof err?.message === 'string' ? err.message : String(e));
  }
  toInfo(): CliErrorInfo {
    return { code: this.code, message: this.message, fields: this.fields };
  }
}

const TYPES: Record<string, string> = { '.json': 'application/json', '.jinja': 'text/plain; charset=utf-8', '.txt': 'text/plain; charset=utf-8' };

/** Serves local folders under /m/<n>/<file>, with CORS for the Vite origin; 404 for anything missing. */
class FolderServer {
  private readonly dirs: string[] = [];
  private constructor(readonly server: Server, readonly url: string) {}

  static async start(): Promise<FolderServer> {
    let self: FolderServer | null = null;
    const server = createServer((req, res) => self!.handle(req.url ?? '/', res));
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(0, '127.0.0.1', () => ok());
    });
    const addr = server.address();
    if (!addr || typeof addr === 'string') throw new Error('model server has no address');
    self = new FolderServer(server, `http://127.0.0.1:${addr.port}`);
    return self;
  }

  mount(dir: string): string {
    this.dirs.push(resolve(dir));
    return `${this.url}/m/${this.dirs.length - 1}`;
  }

  private handle(rawUrl: string, res: import('node:http').ServerResponse): void {
    res.setHeader('Access-Control-Allow-Origin', '*');
    const m = /^\/m\/(\d+)\/(.+)$/.exec(rawUrl.split('?')[0]);
    const root = m ? this.dirs[Number(m[1])] : undefined;
    let file = '';
    if (m && root) {
      try {
        file = resolve(root, decodeURIComponent(m[2]));
      } catch {
        file = '';
      }
    }
    if (!root || !file || !(file.startsWith(root + sep)) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream', 'Content-Length': statSync(file).size });
    createReadStream(file).pipe(res);
  }

  close(): Promise<void> {
    return new Promise((ok) => this.server.close(() => ok()));
  }
}

/** The Chromium host: cli.html in headless chromium, served by Vite; local folders over HTTP. */
class ChromiumLink implements EngineLink {
  onToken: ((id: number, text: string) => void) | null = null;
  private constructor(readonly vite: ViteDevServer, readonly browser: Browser, readonly page: Page, readonly folders: FolderServer) {}

  static async start(): Promise<ChromiumLink> {
    const [vite, browser, folders] = await Promise.all([startServer(0), launchChromium(), FolderServer.start()]);
    try {
      const page = await openPage(browser, vite.url, '/cli.html');
      const link = new ChromiumLink(vite.server, browser, page, folders);
      await page.exposeFunction('__popCliToken', (id: number, text: string) => link.onToken?.(id, text));
      return link;
    } catch (e) {
      await Promise.allSettled([browser.close(), vite.server.close(), folders.close()]);
      throw e;
    }
  }

  folder(dir: string): ModelSpec {
    return { kind: 'url', id: dir, url: this.folders.mount(dir) };
  }

  async call<T>(fn: string, arg: unknown, arg2?: unknown): Promise<Reply<T>> {
    return (await this.page.evaluate(([f, a, b]) => (globalThis as any).popCli[f as string](a, b), [fn, arg, arg2] as const)) as Reply<T>;
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.page.evaluate(() => (globalThis as any).popCli.unload()).catch(() => undefined)]);
    await Promise.allSettled([this.browser.close(), this.vite.close(), this.folders.close()]);
  }
}

export class Session {
  private tokenHandler: ((id: number, text: string) => void) | null = null;

  private constructor(private readonly link: EngineLink) {
    link.onToken = (id, text) => this.tokenHandler?.(id, text);
  }

  /** Starts the engine on a host: headless Chromium (default), or Node on Dawn (`--host node`). */
  static async open(host: Host = 'chromium'): Promise<Session> {
    return new Session(host === 'node' ? await startNodeEngine() : await ChromiumLink.start());
  }

  /** Turns a --model argument into what the page loads. */
  modelSpec(arg: string): ModelSpec {
    if (arg.startsWith('random:')) {
      const dir = arg.slice('random:'.length);
      const read = (name: string, optional: boolean): string | null => {
        const p = resolve(dir, name);
        if (!existsSync(p)) {
          if (optional) return null;
          throw new ModelFileMissingError(`${dir}/${name}`);
        }
        return readFileSync(p, 'utf8');
      };
      let config: Record<string, unknown>;
      try {
        config = JSON.parse(read('config.json', false)!);
      } catch (e) {
        if (e instanceof PopError) throw e;
        throw new CliError('MALFORMED_FILE', `File '${dir}/config.json' is malformed: ${(e as Error).message}.`, { file: 'config.json' });
      }
      let tokenizerJson = read('tokenizer.json', true);
      let tokenizerConfigJson = read('tokenizer_config.json', true);
      if (config.model_type === 'gemma3') {
        // A random Gemma 3: the published image processor settings unless the folder has its
        // own, and the folder's tokenizer with Gemma 3's image tokens at the config's ids.
        const pre = read('preprocessor_config.json', true);
        const ids = { imageTokenId: Number(config.image_token_index ?? 262144), boiTokenId: Number(config.boi_token_index ?? 255999), eoiTokenId: Number(config.eoi_token_index ?? 256000) };
        if (tokenizerJson) tokenizerJson = withGemma3Tokens(tokenizerJson, ids);
        return { kind: 'random', id: arg, config, tokenizerJson, tokenizerConfigJson, preprocessorConfig: pre ? JSON.parse(pre) : null };
      }
      if (config.model_type === 'qwen3_vl' && !tokenizerJson) {
        // A random Qwen3-VL without a tokenizer (bench shapes): stories260K's with Qwen3-VL's vision tokens at the config's ids.
        const stories = resolve(STORIES_TOKENIZER);
        if (existsSync(stories)) tokenizerJson = withQwen3VlTokens(readFileSync(stories, 'utf8'), { imageTokenId: Number(config.image_token_id ?? 151655), visionStartId: Number(config.vision_start_token_id ?? 151652), visionEndId: Number(config.vision_end_token_id ?? 151653) });
      }
      if (config.model_type !== 'idefics3') {
        // Other VLMs (Qwen3-VL): the folder's tokenizer (with its vision tokens) and its processor settings.
        const pre = config.vision_config ? read('preprocessor_config.json', true) : null;
        return { kind: 'random', id: arg, config, tokenizerJson, tokenizerConfigJson, ...(pre ? { preprocessorConfig: JSON.parse(pre) } : {}) };
      }
      // A random SmolVLM: the real image processor settings, and a tokenizer with Idefics3's
      // special tokens (the config folder's own, else SmolLM2's from a sibling folder).
      const pre = read('preprocessor_config.json', true);
      if (!tokenizerJson) {
        const sib = resolve(dir, '..', SMOLVLM_TEXT_TOKENIZER);
        if (existsSync(resolve(sib, 'tokenizer.json'))) {
          tokenizerJson = readFileSync(resolve(sib, 'tokenizer.json'), 'utf8');
          tokenizerConfigJson ??= existsSync(resolve(sib, 'tokenizer_config.json')) ? readFileSync(resolve(sib, 'tokenizer_config.json'), 'utf8') : null;
        }
      }
      const text = (config.text_config ?? {}) as Record<string, unknown>;
      const vocab = Number(config.vocab_size ?? text.vocab_size);
      if (tokenizerJson) tokenizerJson = withIdefics3Tokens(tokenizerJson, Number(config.image_token_id ?? 128257), vocab);
      return { kind: 'random', id: arg, config, tokenizerJson, tokenizerConfigJson, preprocessorConfig: pre ? JSON.parse(pre) : null };
    }
    if (/^https?:\/\//.test(arg)) return { kind: 'url', id: arg, url: arg };
    // A Hub id (owner/name) when no such local folder exists; anything else is a local folder.
    if (!existsSync(arg) && isHubId(arg) && !arg.startsWith('.')) return { kind: 'url', id: arg, url: arg };
    return this.link.folder(arg);
  }

  private async call<T>(fn: string, arg: unknown, arg2?: unknown): Promise<T> {
    const reply = await this.link.call<T>(fn, arg, arg2);
    if ('error' in reply) throw new CliError(reply.error.code, reply.error.message, reply.error.fields ?? {});
    return reply.ok;
  }

  /** Loads a model; remote and random models get their calibration from the user cache. */
  load(req: LoadRequest & { arg?: string }): Promise<ModelInfo> {
    const { arg, ...rest } = req;
    return this.call<ModelInfo>('load', { ...rest, calibration: rest.calibration ?? (arg ? cachedCalibration(arg) : null) });
  }

  async generate(req: GenerateRequest, onToken?: (id: number, text: string) => void): Promise<GenerateReply> {
    this.tokenHandler = onToken ?? null;
    try {
      return await this.call<GenerateReply>('generate', { ...req, stream: !!onToken });
    } finally {
      this.tokenHandler = null;
    }
  }

  popQuality(req: PopQualityRequest): Promise<PopQualityRow[]> {
    return this.call<PopQualityRow[]>('popQuality', req);
  }

  /** Times an image+text prompt (or its text or vision part) on a loaded VLM. */
  imagePrompt(req: ImagePromptRequest): Promise<ImagePromptReply> {
    return this.call<ImagePromptReply>('imagePrompt', req);
  }

  calibrate(req: CalibrateRequest): Promise<CalibrateReply> {
    return this.call<CalibrateReply>('calibrate', req);
  }

  gemm(shapes: GemmShape[], o: { reps?: number; batch?: number } = {}): Promise<GemmReply> {
    return this.call<GemmReply>('gemm', shapes, o);
  }

  close(): Promise<void> {
    return this.link.close();
  }
}
