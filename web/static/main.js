// The page's bootstrap: instantiate the wasm module and mount the Leptos app (web/src/ui).
import init, { startApp } from './pkg/easel_web.js';
await init();
startApp();
