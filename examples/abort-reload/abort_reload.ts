// Abort and reload: unload() while a model loads stops the load; interruptGenerate() during a
// stream ends it with finish_reason "abort"; the same engine then reloads and answers again.
import * as webllm from "pop-llm";

function setLabel(id: string, text: string) {
  const label = document.getElementById(id);
  if (label == null) {
    throw Error("Cannot find label " + id);
  }
  label.innerText = text;
}

let engine: webllm.MLCEngine;
let unloading: Promise<void> | null = null;

async function main() {
  const initProgressCallback = (report: webllm.InitProgressReport) => {
    console.log(report.text);
    setLabel("init-label", report.text);
    // 1b. The first progress report: the load is under way; unload it.
    unloading ??= engine.unload();
  };
  const selectedModel = "stories260K";
  engine = new webllm.MLCEngine({ initProgressCallback });

  // 1. Start a load (unloaded halfway, above).
  const loading = engine.reload(selectedModel);
  await loading.then(
    () => setLabel("abort-label", "the load finished before unload"),
    (err: Error) => setLabel("abort-label", `the load stopped: ${(err as Error & { code?: string }).code ?? err.name}`),
  );

  await unloading;

  // 2. Load again and interrupt a stream after a few chunks.
  engine.setInitProgressCallback((report: webllm.InitProgressReport) => setLabel("init-label", report.text));
  await engine.reload(selectedModel);
  const chunks = await engine.chat.completions.create({
    stream: true,
    messages: [{ role: "user", content: "Once upon a time" }],
    max_tokens: 200,
    ignore_eos: true,
  });
  let text = "";
  let n = 0;
  let finishReason: string | null = null;
  for await (const chunk of chunks) {
    text += chunk.choices[0]?.delta?.content || "";
    finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
    if (++n === 5) engine.interruptGenerate();
  }
  setLabel("interrupt-label", `${text} [finish_reason: ${finishReason}]`);

  // 3. The engine goes on: reload and a new request.
  await engine.reload(selectedModel);
  const reply = await engine.chat.completions.create({
    messages: [{ role: "user", content: "The sun was shining" }],
    max_tokens: 32,
  });
  setLabel("generate-label", reply.choices[0].message.content ?? "");
  setLabel("stats-label", `after the abort: finish_reason ${reply.choices[0].finish_reason}, ${reply.usage?.completion_tokens} tokens`);
}
main();
