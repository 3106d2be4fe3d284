// Get started: an engine in the page, one chat request, its usage.
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
  // A model from prebuiltAppConfig: stories260K is inside the package (no download).
  const selectedModel = "stories260K";
  const engine: webllm.MLCEngineInterface = await webllm.CreateMLCEngine(
    selectedModel,
    { initProgressCallback: initProgressCallback, logLevel: "INFO" },
    // ChatOptions override the model's defaults.
    { context_window_size: 512 },
  );

  // Another way: new webllm.MLCEngine({ initProgressCallback }), then engine.reload(selectedModel).

  const prompt = "Once upon a time, there was a little dog";
  setLabel("prompt-label", prompt);
  const reply = await engine.chat.completions.create({
    messages: [{ role: "user", content: prompt }],
    // below configurations are all optional
    temperature: 0.7,
    top_p: 0.95,
    max_tokens: 48,
  });
  setLabel("generate-label", reply.choices[0].message.content ?? "");
  setLabel("stats-label", `finish_reason: ${reply.choices[0].finish_reason}, prompt_tokens: ${reply.usage?.prompt_tokens}, completion_tokens: ${reply.usage?.completion_tokens}`);
  console.log(reply.usage);
}

main();
