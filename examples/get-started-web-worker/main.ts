// The engine in the app's own worker (./worker.ts runs WebWorkerMLCEngineHandler); the page
// streams from it through the same calls as an in-page engine.
import * as webllm from "pop-llm";

function setLabel(id: string, text: string) {
  const label = document.getElementById(id);
  if (label == null) {
    throw Error("Cannot find label " + id);
  }
  label.innerText = text;
}

async function main() {
  const initProgressCallback = (report: webllm.InitProgressReport) => {
    setLabel("init-label", report.text);
  };
  const selectedModel = "stories260K";

  const engine: webllm.MLCEngineInterface = await webllm.CreateWebWorkerMLCEngine(
    new Worker(new URL("./worker.ts", import.meta.url), { type: "module" }),
    selectedModel,
    { initProgressCallback: initProgressCallback },
  );

  const request: webllm.ChatCompletionRequest = {
    stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: "user", content: "Tom and his cat went to the park." }],
    temperature: 0.8,
    max_tokens: 48,
  };

  const asyncChunkGenerator = await engine.chat.completions.create(request);
  let message = "";
  for await (const chunk of asyncChunkGenerator) {
    message += chunk.choices[0]?.delta?.content || "";
    setLabel("generate-label", message);
    if (chunk.usage) {
      // only the last chunk has usage
      setLabel("stats-label", `worker reply, ${chunk.usage.completion_tokens} tokens; getMessage() equals the stream: ${(await engine.getMessage()) === message}`);
    }
  }
}

main();
