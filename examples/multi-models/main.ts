// Several models in one engine: reload([id1, id2]); each request names its model. Runs in
// the app's worker here; MLCEngine and the service-worker engine do the same.
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

// Two records: the embedded model, and a served copy of its files under another id.
const selectedModel1 = "stories260K";
const selectedModel2 = "stories260K-served";
const appConfig: webllm.AppConfig = {
  model_list: [
    ...webllm.prebuiltAppConfig.model_list,
    { model: new URL("/models/stories260K", location.href).href, model_id: selectedModel2 },
  ],
};
const prompt1 = "Sue went to the beach.";
const prompt2 = "Max the dog was hungry.";
setLabel("prompt-label-1", `(with model ${selectedModel1})\n` + prompt1);
setLabel("prompt-label-2", `(with model ${selectedModel2})\n` + prompt2);

const request1: webllm.ChatCompletionRequestStreaming = {
  stream: true,
  stream_options: { include_usage: true },
  messages: [{ role: "user", content: prompt1 }],
  model: selectedModel1, // without it, the request would be ambiguous
  max_tokens: 32,
};
const request2: webllm.ChatCompletionRequestStreaming = {
  stream: true,
  stream_options: { include_usage: true },
  messages: [{ role: "user", content: prompt2 }],
  model: selectedModel2,
  max_tokens: 32,
};

async function parallelGeneration() {
  const engine = await webllm.CreateWebWorkerMLCEngine(
    new Worker(new URL("./worker.ts", import.meta.url), { type: "module" }),
    [selectedModel1, selectedModel2],
    { initProgressCallback: initProgressCallback, appConfig: appConfig },
  );

  async function getResponse(request: webllm.ChatCompletionRequestStreaming, label: string) {
    let message = "";
    const asyncChunkGenerator = await engine.chat.completions.create(request);
    for await (const chunk of asyncChunkGenerator) {
      message += chunk.choices[0]?.delta?.content || "";
      setLabel(label, message);
    }
    return message;
  }

  // The two requests are served concurrently.
  const [message1, message2] = await Promise.all([getResponse(request1, "generate-label-1"), getResponse(request2, "generate-label-2")]);

  // Without naming the model, getMessage would be ambiguous.
  const same1 = (await engine.getMessage(selectedModel1)) === message1;
  const same2 = (await engine.getMessage(selectedModel2)) === message2;
  setLabel("stats-label", `loaded: ${selectedModel1}, ${selectedModel2}; getMessage matches each stream: ${same1 && same2}`);
}

parallelGeneration();
