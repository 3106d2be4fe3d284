import { WebWorkerMLCEngineHandler } from "pop-llm";

// Hook an engine up to the worker's messages.
const handler = new WebWorkerMLCEngineHandler();
self.onmessage = (msg: MessageEvent) => {
  handler.onmessage(msg);
};
