// pop-llm's own worker (CreateWorkerEngine starts it): exactly what an app's worker holds.
import { WebWorkerMLCEngineHandler } from './worker_handler.ts';

const handler = new WebWorkerMLCEngineHandler();
self.onmessage = (msg: MessageEvent) => handler.onmessage(msg);
