// Text completion: completions.create on a base model (stories260K is one).
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

  // Your own record: the embedded model under another id, with its own context window.
  const selectedModel = "stories260K-base";
  const appConfig: webllm.AppConfig = {
    model_list: [
      {
        model: "pop-llm:stories260K",
        model_id: selectedModel,
        overrides: { context_window_size: 256 },
      },
    ],
  };
  const engine: webllm.MLCEngineInterface = await webllm.CreateMLCEngine(
    selectedModel,
    { appConfig: appConfig, initProgressCallback: initProgressCallback, logLevel: "INFO" },
  );

  const prompt = "Once upon a time, there was a";
  setLabel("prompt-label", prompt);
  const reply0 = await engine.completions.create({
    prompt: prompt,
    // below configurations are all optional
    max_tokens: 48,
    temperature: 0,
  });
  setLabel("generate-label", reply0.choices[0].text);
  setLabel("stats-label", `${reply0.object}, model ${reply0.model}, finish_reason ${reply0.choices[0].finish_reason}, completion_tokens ${reply0.usage?.completion_tokens}`);
  console.log(reply0.usage);
}

main();
