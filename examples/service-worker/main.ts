// The engine in a service worker (./sw.ts runs ServiceWorkerMLCEngineHandler): it outlives
// the page, so a reload of the page finds the model already loaded.
import * as webllm from "pop-llm";

const registerServiceWorker = async () => {
  if ("serviceWorker" in navigator) {
    try {
      const registration = await navigator.serviceWorker.register(
        new URL("sw.ts", import.meta.url),
        { type: "module" },
      );
      if (registration.installing) {
        console.log("Service worker installing");
      } else if (registration.waiting) {
        console.log("Service worker installed");
      } else if (registration.active) {
        console.log("Service worker active");
      }
    } catch (error) {
      console.error(`Registration failed with ${error}`);
    }
  }
};

function setLabel(id: string, text: string) {
  const label = document.getElementById(id);
  if (label == null) {
    throw Error("Cannot find label " + id);
  }
  label.innerText = text;
}

async function mainStreaming() {
  const initProgressCallback = (report: webllm.InitProgressReport) => {
    setLabel("init-label", report.text);
  };
  // A service worker may not import(), so it cannot unpack the package's embedded model:
  // this record points at a served copy of its files (this repository serves
  // public/models/stories260K at /models/stories260K).
  const selectedModel = "stories260K-served";
  const appConfig: webllm.AppConfig = {
    model_list: [{ model: new URL("/models/stories260K", location.href).href, model_id: selectedModel }],
  };

  const engine: webllm.ServiceWorkerMLCEngine = await webllm.CreateServiceWorkerMLCEngine(selectedModel, {
    initProgressCallback: initProgressCallback,
    appConfig: appConfig,
  });

  const request: webllm.ChatCompletionRequest = {
    stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: "user", content: "A girl and her friend" }],
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
      setLabel("stats-label", `from the service worker: ${chunk.usage.completion_tokens} tokens`);
    }
  }
  console.log("Final message:\n", await engine.getMessage()); // the concatenated message
}

async function whenControlled() {
  // The engine talks to the worker that controls this page: on a first visit, the one just
  // registered (its activate handler claims the page).
  if (navigator.serviceWorker.controller) return;
  await new Promise((resolve) => navigator.serviceWorker.addEventListener("controllerchange", resolve, { once: true }));
}

registerServiceWorker();
whenControlled().then(mainStreaming);
