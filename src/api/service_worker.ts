// The service-worker pair, as WebLLM's: ServiceWorkerMLCEngineHandler in the service worker
// (`self.addEventListener('activate', () => { handler = new ServiceWorkerMLCEngineHandler(); })`)
// keeps one engine for every page it controls, so a model stays loaded across page loads;
// CreateServiceWorkerMLCEngine in a page talks to it (the page must be controlled). The same
// EngineHost over Comlink as the web worker, one endpoint per client page; the pages send a
// keep-alive so the browser does not stop the service worker while they are open.
import * as Comlink from 'comlink';
import { UnsupportedFeatureError } from '../errors.ts';
import { WebWorkerMLCEngine, type ChatWorker } from './client.ts';
import type { ModelSpec } from './interface.ts';
import type { ChatOptions, MLCEngineConfig } from './protocol.ts';
import { HandlerEndpoint, WebWorkerMLCEngineHandler } from './worker_handler.ts';

/** A service worker's message event (ExtendableMessageEvent), as far as the handler reads it. */
interface SwMessageEvent {
  data: unknown;
  source: { id: string; postMessage(m: unknown, t?: Transferable[]): void } | null;
  waitUntil?(p: Promise<unknown>): void;
}

/** The handler inside the service worker: it listens to the pages it controls itself. */
export class ServiceWorkerMLCEngineHandler extends WebWorkerMLCEngineHandler {
  private readonly clients = new Map<string, HandlerEndpoint>();
  /** What was loaded, so a page that opens again with the same models does not reload them. */
  private loaded: string | null = null;

  constructor() {
    const scope = globalThis as unknown as { addEventListener?: (t: string, l: (e: SwMessageEvent) => void) => void; registration?: unknown };
    if (typeof scope.addEventListener !== 'function' || scope.registration === undefined) throw new UnsupportedFeatureError('ServiceWorkerMLCEngineHandler', 'it runs inside a service worker only');
    super();
    // Loading the same models again is a no-op (WebLLM's service worker behaviour).
    const reload = this.host.reload.bind(this.host);
    this.host.reload = async (modelId, chatOpts, options, id, onProgress) => {
      const key = JSON.stringify([modelId, chatOpts ?? null, options]);
      if (key === this.loaded && this.engine.loadedModelIds.length) {
        onProgress?.({ progress: 1, timeElapsed: 0, text: 'Already loaded' });
        return this.host.state();
      }
      this.loaded = null;
      const s = await reload(modelId, chatOpts, options, id, onProgress);
      this.loaded = key;
      return s;
    };
    scope.addEventListener('message', (e) => this.onmessage(e as unknown as MessageEvent));
  }

  override onmessage(event: MessageEvent): void {
    const e = event as unknown as SwMessageEvent;
    if (!e.source) return;
    let ep = this.clients.get(e.source.id);
    if (!ep) {
      const client = e.source;
      ep = new HandlerEndpoint((m, t) => client.postMessage(m, t));
      Comlink.expose(this.host, ep);
      this.clients.set(client.id, ep);
    }
    // Keeps the service worker alive a little past each message (the pages ping).
    e.waitUntil?.(new Promise((r) => setTimeout(r, 15_000)));
    ep.deliver(event);
  }
}

/** The page's client of the service worker's engine. */
export class ServiceWorkerMLCEngine extends WebWorkerMLCEngine {
  private readonly keepAlive: ReturnType<typeof setInterval>;

  constructor(engineConfig: MLCEngineConfig = {}, keepAliveMs = 10_000) {
    const sw = navigator.serviceWorker;
    const controller = sw?.controller;
    if (!controller) throw new UnsupportedFeatureError('service worker engine', 'this page is not controlled by a service worker yet (register it, then reload the page)');
    const worker: ChatWorker = {
      set onmessage(l: ((e: MessageEvent) => void) | null) {
        if (!l) return;
        sw.addEventListener('message', l);
        sw.startMessages(); // messages wait until started (setting onmessage would start them)
      },
      get onmessage() {
        return null;
      },
      postMessage: (m: unknown, t?: Transferable[]) => controller.postMessage(m, t ?? []),
    };
    super(worker, engineConfig);
    this.keepAlive = setInterval(() => void this.remote.ping().catch(() => {}), keepAliveMs);
  }

  /** Stops the keep-alive (the service worker and its engine stay). */
  close(): void {
    clearInterval(this.keepAlive);
  }
}

/** Connects to the service worker's engine and loads the model(s) there (a no-op when it already holds them). */
export async function CreateServiceWorkerMLCEngine(modelId: ModelSpec | ModelSpec[], engineConfig?: MLCEngineConfig, chatOpts?: ChatOptions | ChatOptions[], keepAliveMs = 10_000): Promise<ServiceWorkerMLCEngine> {
  await navigator.serviceWorker?.ready;
  const engine = new ServiceWorkerMLCEngine(engineConfig, keepAliveMs);
  await engine.reload(modelId, chatOpts);
  return engine;
}

