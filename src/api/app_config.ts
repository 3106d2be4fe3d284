// AppConfig lookup, as WebLLM's: `model_id` names a record, `model` says where its files are
// (a URL, relative ones being the page's, or a Hugging Face Hub id). prebuiltAppConfig lists
// what pop-llm has run: the embedded stories260K (inside the package: pop-llm:stories260K), Hub
// safetensors repos of each supported family (test/families.spec.ts runs their real configs),
// and WebLLM's MLC build that the MLC loader reads (test/mlc.spec.ts, bench --vs-webllm).
import { EMBEDDED_MODEL_URL } from '../model/embedded.ts';
import { type AppConfig, type ModelRecord, ModelType } from './protocol.ts';

const hub = (repo: string, type: ModelType = ModelType.LLM): ModelRecord => ({ model_id: repo.split('/')[1], model: repo, model_type: type });

export const prebuiltAppConfig: AppConfig = {
  useIndexedDBCache: false,
  model_list: [
    // Inside the package (src/model/embedded.ts): nothing to download or serve.
    { model_id: 'stories260K', model: EMBEDDED_MODEL_URL, model_type: ModelType.LLM, overrides: { context_window_size: 512 } },
    hub('HuggingFaceTB/SmolLM2-135M-Instruct'),
    hub('HuggingFaceTB/SmolLM2-360M-Instruct'),
    hub('Qwen/Qwen2.5-0.5B-Instruct'),
    hub('Qwen/Qwen3-0.6B'),
    hub('meta-llama/Llama-3.2-1B-Instruct'),
    hub('google/gemma-3-1b-it'),
    hub('HuggingFaceTB/SmolVLM-256M-Instruct', ModelType.VLM),
    hub('google/gemma-3-4b-it', ModelType.VLM),
    { model_id: 'Qwen2.5-0.5B-Instruct-q4f32_1-MLC', model: 'mlc-ai/Qwen2.5-0.5B-Instruct-q4f32_1-MLC', model_type: ModelType.LLM },
  ],
};

/**
 * The record for a model id. An id that no record names is itself the location (pop-llm:
 * a URL, a path on this origin or a Hub id load without a record); `named` says which.
 */
export function findModelRecord(modelId: string, appConfig: AppConfig): { record: ModelRecord; named: boolean } {
  const record = appConfig.model_list.find((r) => r.model_id === modelId);
  return record ? { record, named: true } : { record: { model_id: modelId, model: modelId }, named: false };
}
