// An app's service worker, in WebLLM's form (only the import differs): the handler is made
// when the worker activates, and claims the pages so they are controlled at once.
import { ServiceWorkerMLCEngineHandler } from '../src/api/index.ts';

declare const self: ServiceWorkerGlobalScope;
let handler: ServiceWorkerMLCEngineHandler | undefined;
self.addEventListener('install', () => void self.skipWaiting());
self.addEventListener('activate', (event) => {
  handler ??= new ServiceWorkerMLCEngineHandler();
  event.waitUntil(self.clients.claim());
});
