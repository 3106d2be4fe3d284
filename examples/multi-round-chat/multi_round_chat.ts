// Multi-round chat: the app keeps the history; when a request extends the previous one, the
// engine reuses its KV cache and prefills only the new tokens (usage.prompt_tokens).
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

  // Round 0
  const messages: webllm.ChatCompletionMessageParam[] = [
    {
      role: "system",
      content:
        "Once upon a time, there was a little boy named Tim. Tim lived in a small house " +
        "with his mom and dad. He liked to play outside in the sun with his dog, Max.",
    },
    { role: "user", content: "One day, Tim found a red kite." },
  ];
  const request0: webllm.ChatCompletionRequest = {
    stream: false, // can be streaming, same behaviour
    messages: messages,
    max_tokens: 12,
  };
  const reply0 = await engine.chat.completions.create(request0);
  const replyMessage0 = await engine.getMessage();
  setLabel("round0-label", replyMessage0);

  // Round 1: the reply and a new user message appended to the same history.
  messages.push({ role: "assistant", content: replyMessage0 });
  messages.push({ role: "user", content: "Then the wind came." });
  // Changing an earlier message (messages[0].content = "...") would start over: no reuse.
  const request1: webllm.ChatCompletionRequest = {
    stream: false,
    messages: messages,
    max_tokens: 12,
  };
  const reply1 = await engine.chat.completions.create(request1);
  const replyMessage1 = await engine.getMessage();
  setLabel("round1-label", replyMessage1);

  // With the KV cache reused, round 1 prefills only what round 0 had not seen.
  const prefillTokens0 = reply0.usage?.prompt_tokens;
  const prefillTokens1 = reply1.usage?.prompt_tokens;
  if (prefillTokens0 === undefined || prefillTokens1 === undefined || prefillTokens1 > prefillTokens0) {
    throw Error("Multi-round chat is not triggered as expected.");
  }
  setLabel("stats-label", `prompt_tokens: round 0 ${prefillTokens0}, round 1 ${prefillTokens1}`);
}

main();
