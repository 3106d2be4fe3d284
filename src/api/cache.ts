// WebLLM's cache helpers over pop-llm's model cache (Cache API bodies, IndexedDB metadata;
// src/model/model_cache.ts). A model id is looked up in the AppConfig (prebuiltAppConfig by
// default) as reload does. Weights are the tensor files; the "chat config" is the small JSON
// and text files (config, tokenizer, chat template); pop-llm has no model library (wasm).
import { cacheAvailable, cachedModelInfo, deleteCachedFiles, deleteCachedModel } from '../model/model_cache.ts';
import { isEmbeddedModelUrl } from '../model/embedded.ts';
import { findModelRecord, prebuiltAppConfig } from './app_config.ts';
import { absoluteLocation } from './engine.ts';
import type { AppConfig } from './protocol.ts';

const locationOf = (modelId: string, appConfig?: AppConfig) => absoluteLocation(findModelRecord(modelId, appConfig ?? prebuiltAppConfig).record.model);
const isWeights = (file: string) => /\.safetensors$|^params_shard_\d+\.bin$|^ndarray-cache\.json$|\.safetensors\.index\.json$/.test(file);

/** Whether every file of the model is in the browser cache (a complete earlier load). */
export async function hasModelInCache(modelId: string, appConfig?: AppConfig): Promise<boolean> {
  // The embedded model is always there (it ships inside the package).
  if (isEmbeddedModelUrl(locationOf(modelId, appConfig))) return true;
  if (!cacheAvailable()) return false;
  return (await cachedModelInfo(locationOf(modelId, appConfig)))?.complete === true;
}

/** Deletes everything cached for the model. */
export async function deleteModelAllInfoInCache(modelId: string, appConfig?: AppConfig): Promise<void> {
  if (cacheAvailable()) await deleteCachedModel(locationOf(modelId, appConfig));
}

/** Deletes the model's weight files (safetensors, MLC shards and their index). */
export async function deleteModelInCache(modelId: string, appConfig?: AppConfig): Promise<void> {
  if (cacheAvailable()) await deleteCachedFiles(locationOf(modelId, appConfig), isWeights);
}

/** Deletes the model's configuration files (config.json, tokenizer, chat template, mlc-chat-config.json, pop.json). */
export async function deleteChatConfigInCache(modelId: string, appConfig?: AppConfig): Promise<void> {
  if (cacheAvailable()) await deleteCachedFiles(locationOf(modelId, appConfig), (f) => !isWeights(f));
}

/** pop-llm stores no model library (it runs its own kernels): nothing to delete. */
export async function deleteModelWasmInCache(_modelId: string, _appConfig?: AppConfig): Promise<void> {}
