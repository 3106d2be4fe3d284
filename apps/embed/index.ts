// The script-tag entry (built by `npm run build` into dist/pop-llm.js, an IIFE):
//   <script src="pop-llm.js" data-model="/models/stories260K" data-pop="auto"></script>
// defines <pop-chat>, mounts one after the tag when the page has none, and sets window.PopLLM
// (CreateWorkerEngine, WorkerEngine, PopChatElement, the error classes) for pages that want
// the WebLLM-style API itself. The worker chunk is loaded from next to the script.
import { CreateWorkerEngine, WorkerEngine } from '../../src/api/client.ts';
import * as errors from '../../src/errors.ts';
import { PopChatElement, popChatDefaults } from './pop_chat.ts';

export { CreateWorkerEngine, WorkerEngine, PopChatElement, errors };
export const version = '0.1.0';

if (typeof customElements !== 'undefined' && !customElements.get('pop-chat')) customElements.define('pop-chat', PopChatElement);

// document.currentScript is the <script> tag only while a classic script first runs.
const script = typeof document !== 'undefined' ? (document.currentScript as HTMLScriptElement | null) : null;
if (script?.dataset) {
  const d = script.dataset;
  if (d.model) popChatDefaults.model = d.model;
  if (d.pop) popChatDefaults.pop = d.pop;
  if (d.maxTokens) popChatDefaults.maxTokens = Number(d.maxTokens);
  if (d.model && d.mount !== 'false') {
    const mount = () => {
      if (document.querySelector('pop-chat')) return;
      const el = document.createElement('pop-chat');
      if (script.isConnected && script.parentNode !== document.head) script.after(el);
      else document.body.append(el);
    };
    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', mount, { once: true });
    else mount();
  }
}
