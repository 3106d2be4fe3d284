// The package's worker entry (`pop-llm/worker`): a module worker started from this file
// serves the engine (the GPU, the model) to the page over Comlink.
import './api/worker.ts';
