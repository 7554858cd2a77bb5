// The worker: owns the wasm engine and the WebGPU device; reads the user's files by byte
// range with FileReaderSync (only possible off the main thread).
import init, { initGpu, loadModel, loadHypernetworks, loadEmbeddings, loadLoras, setTaesd, setPreviewNetworks, generate, readInfotext, samplerLabels, scheduleLabels, hiresUpscalerLabels, settingsFromInfotext, wasmMemoryBytes } from './pkg/easel_web.js';

const ready = init();

async function handle(m) {
  await ready;
  switch (m.type) {
    case 'init': {
      if (!('gpu' in navigator)) throw new Error('This browser has no WebGPU (navigator.gpu is missing).');
      const adapter = await initGpu();
      return { adapter, samplers: samplerLabels(), schedules: scheduleLabels(), upscalers: hiresUpscalerLabels() };
    }
    case 'load':
      return { info: loadModel(m.checkpoint, m.yaml, m.vae), memoryBytes: wasmMemoryBytes() };
    case 'hypernets':
      return { names: loadHypernetworks(m.files) };
    case 'taesd': {
      const r = setTaesd(m.decoder ?? undefined, m.encoder ?? undefined);
      const p = setPreviewNetworks(m.approx ?? undefined, m.decoder ?? undefined);
      return { decoder: r.decoder, encoder: r.encoder, approx: p.approx };
    }
    case 'loras':
      return { names: loadLoras(m.files) };
    case 'embeddings': {
      const r = loadEmbeddings(m.files);
      return { names: r.names, warnings: r.warnings };
    }
    case 'generate': {
      const images = await generate(m.settings, m.initImage ?? undefined, m.mask ?? undefined, (step, total, rgba, width, height) =>
        postMessage({ type: 'step', step, total, rgba, width, height }), m.previewMethod || 'Approx cheap',
      (rgba, width, height) => postMessage({ type: 'preview', rgba, width, height }));
      return { images };
    }
    case 'infotext': {
      const text = readInfotext(m.png);
      return { settings: text ? settingsFromInfotext(text) : null };
    }
    default:
      throw new Error(`unknown request ${m.type}`);
  }
}

onmessage = (ev) => {
  handle(ev.data).then(
    (r) => postMessage({ type: 'ok', ...r }),
    (e) => postMessage({ type: 'error', message: String(e && e.message ? e.message : e) }),
  );
};
