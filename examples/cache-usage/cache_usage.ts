// Cache usage: a model loaded from a URL is kept in the browser's Cache API; hasModelInCache
// says so, deleteModelAllInfoInCache removes it, and the next load fetches it again.
import * as webllm from "pop-llm";

function setLabel(id: string, text: string) {
  const label = document.getElementById(id);
  if (label == null) {
    throw Error("Cannot find label " + id);
  }
  label.innerText = text;
}

const initProgressCallback = (report: webllm.InitProgressReport) => {
  setLabel("init-label", report.text);
};

async function main() {
  // The embedded model is never downloaded, so this record points at a served copy of its
  // files (this repository serves public/models/stories260K at /models/stories260K).
  const selectedModel = "stories260K-served";
  const appConfig: webllm.AppConfig = {
    model_list: [
      ...webllm.prebuiltAppConfig.model_list,
      { model: new URL("/models/stories260K", location.href).href, model_id: selectedModel },
    ],
  };
  const log: string[] = [];
  const note = (line: string) => {
    log.push(line);
    setLabel("cache-label", log.join("\n"));
  };

  // 1. Downloads the model and keeps it in the cache.
  const engine: webllm.MLCEngineInterface = await webllm.CreateMLCEngine(
    selectedModel,
    { initProgressCallback: initProgressCallback, appConfig: appConfig },
  );
  const request: webllm.ChatCompletionRequest = {
    stream: false,
    messages: [{ role: "user", content: "The little fish" }],
    temperature: 0,
    max_tokens: 32,
  };
  let reply = await engine.chat.completions.create(request);
  setLabel("generate-label", reply.choices[0].message.content ?? "");

  // 2. Is it cached?
  let modelCached = await webllm.hasModelInCache(selectedModel, appConfig);
  note(`after the first load, hasModelInCache: ${modelCached}`);
  if (!modelCached) {
    throw Error("Expect hasModelInCache() to be true, but got: " + modelCached);
  }

  // 3. A reload now reads the cache.
  await engine.reload(selectedModel);
  reply = await engine.chat.completions.create(request);
  note("reloaded from the cache");

  // 4. Delete everything about this model from the cache.
  await webllm.deleteModelAllInfoInCache(selectedModel, appConfig);
  modelCached = await webllm.hasModelInCache(selectedModel, appConfig);
  note(`after deleteModelAllInfoInCache, hasModelInCache: ${modelCached}`);
  if (modelCached) {
    throw Error("Expect hasModelInCache() to be false, but got: " + modelCached);
  }

  // 5. The next load downloads it again.
  await engine.reload(selectedModel);
  reply = await engine.chat.completions.create(request);
  note(`downloaded again, hasModelInCache: ${await webllm.hasModelInCache(selectedModel, appConfig)}`);
  setLabel("stats-label", `greedy replies: ${reply.choices[0].message.content === document.getElementById("generate-label")!.innerText ? "the same" : "different"} after reload`);
}

main();
