// The app's own worker: the package's worker entry serves the engine from here.
import 'pop-llm/worker';
