// Seeding: at a high temperature sampling is random, yet two requests with the same seed
// generate the same text; another seed (or none) gives another draw.
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
    stream: false, // works with streaming as well
    messages: [{ role: "user", content: "One day, a little bird" }],
    temperature: 1.2, // a high temperature gives much more random results
    max_tokens: 48,
    seed: 42,
  };

  const reply0 = await engine.chat.completions.create(request);
  setLabel("reply0-label", reply0.choices[0].message.content ?? "");
  const reply1 = await engine.chat.completions.create(request);
  setLabel("reply1-label", reply1.choices[0].message.content ?? "");
  const reply2 = await engine.chat.completions.create({ ...request, seed: 7 });
  setLabel("reply2-label", reply2.choices[0].message.content ?? "");

  // Check each choice of the two seeded requests.
  for (const choice0 of reply0.choices) {
    const choice1 = reply1.choices[choice0.index];
    if (choice0.message.content !== choice1.message.content) {
      throw Error("Choice " + choice0.index + " of the two generations differs despite seeding");
    }
  }
  setLabel("stats-label", `seed 42 twice: the same reply; seed 7: ${reply2.choices[0].message.content === reply0.choices[0].message.content ? "the same" : "another"} reply`);
}

main();
