// Streaming: deltas as they are generated, usage on the last chunk.
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
  const engine: webllm.MLCEngineInterface = await webllm.CreateMLCEngine(
    selectedModel,
    { initProgressCallback: initProgressCallback },
  );

  const request: webllm.ChatCompletionRequest = {
    stream: true,
    stream_options: { include_usage: true },
    messages: [
      { role: "system", content: "A short story for children." },
      { role: "user", content: "Lily found a big red ball." },
    ],
    max_tokens: 64,
  };

  const asyncChunkGenerator = await engine.chat.completions.create(request);
  let message = "";
  let chunks = 0;
  for await (const chunk of asyncChunkGenerator) {
    chunks += 1;
    message += chunk.choices[0]?.delta?.content || "";
    setLabel("generate-label", message);
    if (chunk.usage) {
      // only the last chunk (with no choices) has usage
      setLabel("stats-label", `${chunks} chunks, usage on the last: completion_tokens ${chunk.usage.completion_tokens}, ${chunk.usage.extra.decode_tokens_per_s.toFixed(1)} tok/s`);
    }
    // engine.interruptGenerate();  // ends the stream with finish_reason "abort"
  }
  console.log("Final message:\n", await engine.getMessage()); // the concatenated message
}

main();
