// The worker's bootstrap: instantiate the same wasm module and start the engine's message
// loop (web/src/worker_main.rs), which owns the WebGPU device and reads the user's files.
import init, { startWorker } from './pkg/easel_web.js';
await init();
startWorker();
