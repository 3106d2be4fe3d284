import { ServiceWorkerMLCEngineHandler } from "pop-llm";

let handler: ServiceWorkerMLCEngineHandler;

self.addEventListener("activate", function (event) {
  handler = new ServiceWorkerMLCEngineHandler();
  console.log("pop-llm service worker activated", handler);
  // Control the page that registered it now, not from its next load on.
  (event as ExtendableEvent).waitUntil((self as unknown as ServiceWorkerGlobalScope).clients.claim());
});
