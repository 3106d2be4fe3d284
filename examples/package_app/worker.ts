// The app's own worker, in WebLLM's form.
import { WebWorkerMLCEngineHandler } from 'pop-llm';

const handler = new WebWorkerMLCEngineHandler();
self.onmessage = (msg: MessageEvent) => {
  handler.onmessage(msg);
};
