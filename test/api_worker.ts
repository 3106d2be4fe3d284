// An app's own worker, in WebLLM's form (only the import differs).
import { WebWorkerMLCEngineHandler } from '../src/api/index.ts';

const handler = new WebWorkerMLCEngineHandler();
self.onmessage = (msg: MessageEvent) => {
  handler.onmessage(msg);
};
