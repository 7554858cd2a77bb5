// The page: collects the user's files and the form, talks to the worker (worker.js) that
// runs the wasm engine on WebGPU, shows progress, previews and results. Nothing leaves the
// machine: files are passed to the worker as File handles and read there by byte range.
const $ = (id) => document.getElementById(id);
const state = (s) => { document.body.dataset.state = s; };
let worker = null;
let loaded = null;          // {name, hash, vae} of the model on the GPU
let lastFiles = null;       // what to reload after a cancel restarts the worker
let folderModels = [];      // [{checkpoint, yaml, vae}] found in a picked folder
let pending = null;         // {resolve, reject} of the request in flight
window.easel = { timings: {}, results: [], previews: [] };

function status(text, isError = false) {
  $('status').textContent = text;
  $('status').className = isError ? 'error' : '';
}

function request(msg) {
  return new Promise((resolve, reject) => {
    pending = { resolve, reject };
    worker.postMessage(msg);
  });
}

function onWorkerMessage(ev) {
  const m = ev.data;
  if (m.type === 'preview') {
    const c = $('preview');
    c.width = m.width; c.height = m.height;
    c.getContext('2d').putImageData(new ImageData(m.rgba, m.width, m.height), 0, 0);
    window.easel.previews.push({ method: $('preview-method').value, width: m.width, height: m.height });
    return;
  }
  if (m.type === 'step') {
    $('progress').max = m.total;
    $('progress').value = m.step;
    const c = $('preview');
    c.width = m.width; c.height = m.height;
    c.getContext('2d').putImageData(new ImageData(m.rgba, m.width, m.height), 0, 0);
    status(`step ${m.step}/${m.total}`);
    return;
  }
  const p = pending; pending = null;
  if (!p) return;
  if (m.type === 'error') p.reject(new Error(m.message)); else p.resolve(m);
}

async function startWorker() {
  worker = new Worker('worker.js', { type: 'module' });
  worker.onmessage = onWorkerMessage;
  worker.onerror = (e) => { status(`worker failed: ${e.message}`, true); state('error'); };
  const t0 = performance.now();
  const r = await request({ type: 'init' });
  window.easel.timings.initMs = performance.now() - t0;
  $('gpu').textContent = r.adapter.replace(/ \(BrowserWebGpu, +\)$/, '') === 'wgpu ' ? 'WebGPU' : r.adapter;
  fillSelect($('sampler'), r.samplers, 'Euler a');
  fillSelect($('schedule'), r.schedules, 'Automatic');
  fillSelect($('hr-upscaler'), r.upscalers, 'Latent');
}

function fillSelect(sel, values, preferred) {
  if (sel.options.length) return;
  for (const v of values) sel.add(new Option(v, v, false, v === preferred));
}

// A1111's sidecar rules: <stem>.yaml is the config, <stem>.vae.{pt,ckpt,safetensors} the VAE.
function discover(files) {
  const byName = new Map(files.map((f) => [f.webkitRelativePath || f.name, f]));
  const out = [];
  for (const [path, f] of byName) {
    if (/\.vae\.(pt|ckpt|safetensors)$/i.test(path)) continue;
    if (!/\.(ckpt|safetensors)$/i.test(path)) continue;
    if (path.includes('/') && !/(^|\/)Stable-diffusion\//.test(path) &&
      /(^|\/)(VAE|VAE-approx|hypernetworks|Lora|LyCORIS|embeddings|ESRGAN|RealESRGAN|SwinIR)\//.test(path)) continue;
    const stem = path.replace(/\.(ckpt|safetensors)$/i, '');
    const yaml = byName.get(stem + '.yaml') || null;
    const vae = ['.vae.pt', '.vae.ckpt', '.vae.safetensors'].map((s) => byName.get(stem + s)).find(Boolean) || null;
    out.push({ label: path, checkpoint: f, yaml, vae });
  }
  return out;
}

async function loadModel(files) {
  state('loading');
  status(`loading ${files.checkpoint.name}…`);
  $('generate').disabled = true;
  const t0 = performance.now();
  try {
    const r = await request({ type: 'load', ...files });
    window.easel.timings.loadMs = performance.now() - t0;
    loaded = r.info; lastFiles = files;
    window.easel.memoryBytes = r.memoryBytes;
    $('model-info').textContent = `${loaded.name} [${loaded.hash}]${loaded.vae ? ' + ' + loaded.vae : ''}`;
    status(`loaded in ${(window.easel.timings.loadMs / 1000).toFixed(1)} s`);
    $('generate').disabled = false;
    state('loaded');
  } catch (e) {
    status(e.message, true); state('error');
  }
}

// A1111's sampler parameters (names as the CLI's flags); blank inputs are left out.
const SAMPLER_PARAMS = ['eta', 'eta_ddim', 's_churn', 's_tmin', 's_tmax', 's_noise',
  'sigma_min', 'sigma_max', 'rho', 'beta_alpha', 'beta_beta'];
function samplerParams() {
  const out = {};
  for (const k of SAMPLER_PARAMS) {
    const v = $(`sp-${k}`).value;
    if (v !== '' && Number.isFinite(Number(v))) out[k] = Number(v);
  }
  return out;
}

function settings() {
  let seed = Number($('seed').value);
  if (!Number.isFinite(seed) || seed < 0) seed = Math.floor(Math.random() * 2 ** 32);
  return {
    prompt: $('prompt').value, negative_prompt: $('negative').value,
    sampler: $('sampler').value, schedule_type: $('schedule').value,
    steps: Number($('steps').value), cfg_scale: Number($('cfg').value), seed,
    width: Number($('width').value), height: Number($('height').value),
    batch_size: Number($('batch').value), clip_skip: Number($('clip-skip').value),
    rng: $('rng').value, noise_device: $('noise-device').value,
    ensd: Math.max(0, Math.floor(Number($('ensd').value) || 0)),
    emphasis: $('emphasis').value, nai_braces: $('nai-braces').checked,
    vae_decoder: $('vae-decoder').value, vae_encoder: $('vae-encoder').value,
    sampler_params: samplerParams(),
    hypernets: [...document.querySelectorAll('#hypernet-list input[type=checkbox]:checked')].map((c) => ({
      name: c.value, strength: Number(document.getElementById(`hn-strength-${c.dataset.index}`).value),
    })),
    denoising_strength: Number($('denoising').value),
    resize_mode: Number($('resize-mode').value),
    mask_blur: Math.max(0, Math.floor(Number($('mask-blur').value) || 0)),
    inpainting_fill: Number($('inpainting-fill').value),
    inpaint_full_res: $('inpaint-full-res').checked,
    inpaint_full_res_padding: Math.max(0, Math.floor(Number($('inpaint-padding').value) || 0)),
    inpainting_mask_invert: $('mask-invert').checked,
    // Hires fix is a txt2img option: an init image turns it off, as in A1111's img2img tab.
    enable_hr: $('enable-hr').checked && !$('init-image').files.length,
    hr_upscaler: $('hr-upscaler').value,
    hr_scale: Number($('hr-scale').value),
    hr_second_pass_steps: Math.max(0, Math.floor(Number($('hr-steps').value) || 0)),
    hr_resize_x: Math.max(0, Math.floor(Number($('hr-resize-x').value) || 0)),
    hr_resize_y: Math.max(0, Math.floor(Number($('hr-resize-y').value) || 0)),
  };
}

// The init image and mask as bytes for the worker (null when not picked).
async function imageInputs() {
  const bytes = async (input) => (input.files.length ? new Uint8Array(await input.files[0].arrayBuffer()) : null);
  const initImage = await bytes($('init-image'));
  const mask = initImage ? await bytes($('mask')) : null;
  return { initImage, mask };
}

function showResult(img) {
  const blob = new Blob([img.png], { type: 'image/png' });
  const url = URL.createObjectURL(blob);
  const fig = document.createElement('figure');
  const el = document.createElement('img');
  el.src = url; el.alt = `seed ${img.seed}`; el.width = img.width; el.height = img.height;
  const cap = document.createElement('figcaption');
  const pre = document.createElement('pre'); pre.textContent = img.infotext;
  const a = document.createElement('a'); a.href = url; a.download = `easel-${img.seed}.png`; a.textContent = 'Download PNG';
  cap.append(pre, a); fig.append(el, cap);
  $('gallery').prepend(fig);
}

async function generate() {
  $('generate').disabled = true; $('cancel').disabled = false;
  $('progress').value = 0;
  state('generating');
  const t0 = performance.now();
  try {
    const inputs = await imageInputs();
    const r = await request({ type: 'generate', settings: JSON.stringify(settings()), previewMethod: $('preview-method').value, ...inputs });
    window.easel.timings.generateMs = performance.now() - t0;
    for (const img of r.images) { window.easel.results.push(img); showResult(img); }
    status(`done in ${(window.easel.timings.generateMs / 1000).toFixed(1)} s`);
    state('done');
  } catch (e) {
    if (e.message === 'cancelled') { status('cancelled'); state('cancelled'); }
    else { status(e.message, true); state('error'); }
  } finally {
    $('generate').disabled = !loaded; $('cancel').disabled = true;
  }
}

// Cancel: the worker is busy on the GPU, so stop it and start a fresh one with the model.
async function cancel() {
  worker.terminate();
  if (pending) { pending.reject(new Error('cancelled')); pending = null; }
  loaded = null;
  await startWorker();
  if (lastFiles) await loadModel(lastFiles);
  if (lastHypernets.length) await loadHypernets(lastHypernets);
  if (lastEmbeddings.length) await loadEmbeddings(lastEmbeddings);
  if (lastLoras.length) await loadLoras(lastLoras, true);
  if (lastTaesd) await loadTaesd(lastTaesd);
}

// A dropped PNG fills the form from its infotext, through the generation service's own
// reading of it (every setting A1111 records: ENSD, emphasis, sampler parameters, ...).
async function fillFromPng(file) {
  let r;
  try {
    r = await request({ type: 'infotext', png: new Uint8Array(await file.arrayBuffer()) });
  } catch (e) { status(`${file.name}: ${e.message}`, true); return; }
  if (!r.settings) { status(`${file.name} has no generation parameters`, true); return; }
  const s = JSON.parse(r.settings);
  $('prompt').value = s.prompt; $('negative').value = s.negative_prompt;
  if ([...$('sampler').options].some((o) => o.value === s.sampler)) $('sampler').value = s.sampler;
  $('schedule').value = s.schedule_type ?? 'Automatic';
  $('steps').value = s.steps; $('cfg').value = s.cfg_scale; $('seed').value = s.seed;
  $('width').value = s.width; $('height').value = s.height; $('clip-skip').value = s.clip_skip;
  $('rng').value = s.rng; $('noise-device').value = s.noise_device; $('ensd').value = s.ensd;
  $('emphasis').value = s.emphasis; $('nai-braces').checked = s.nai_braces;
  for (const [id, v] of [['vae-decoder', s.vae_decoder], ['vae-encoder', s.vae_encoder]])
    if ([...$(id).options].some((o) => o.value === v)) $(id).value = v;
  for (const k of SAMPLER_PARAMS) $(`sp-${k}`).value = s.sampler_params[k] ?? '';
  $('denoising').value = s.denoising_strength; $('mask-blur').value = s.mask_blur;
  $('inpainting-fill').value = String(s.inpainting_fill); $('inpaint-full-res').checked = s.inpaint_full_res;
  $('inpaint-padding').value = s.inpaint_full_res_padding; $('mask-invert').checked = s.inpainting_mask_invert;
  $('enable-hr').checked = s.enable_hr; $('hr-scale').value = s.hr_scale;
  $('hr-steps').value = s.hr_second_pass_steps; $('hr-resize-x').value = s.hr_resize_x; $('hr-resize-y').value = s.hr_resize_y;
  if ([...$('hr-upscaler').options].some((o) => o.value === s.hr_upscaler)) $('hr-upscaler').value = s.hr_upscaler;
  for (const h of s.hypernets) {
    const check = document.querySelector(`#hypernet-list input[value="${CSS.escape(h.name)}"]`);
    if (check) { check.checked = true; document.getElementById(`hn-strength-${check.dataset.index}`).value = h.strength; }
  }
  state('filled');
  status(`settings from ${file.name}`);
}

// Easel's (and the CLI's) embeddings scan order: each folder's files by name, then its
// subfolders by name; the later of two same-named files wins.
function scanOrder(files) {
  const parts = (f) => (f.webkitRelativePath || f.name).split('/');
  return [...files].sort((a, b) => {
    const pa = parts(a), pb = parts(b);
    for (let i = 0; ; i++) {
      const lastA = i === pa.length - 1, lastB = i === pb.length - 1;
      if (pa[i] !== pb[i]) {
        if (lastA !== lastB) return lastA ? -1 : 1;
        return pa[i] < pb[i] ? -1 : 1;
      }
      if (lastA || lastB) return lastA === lastB ? 0 : (lastA ? -1 : 1);
    }
  });
}

// A1111's VAE-approx/ files by name: TAESD's halves (taesd_decoder.pth, taesd_encoder.pth)
// and the VAE-approx preview network (model.pt).
let lastTaesd = null;
async function loadTaesd(files) {
  const decoder = files.find((f) => /taesd_decoder/i.test(f.name)) || null;
  const encoder = files.find((f) => /taesd_encoder/i.test(f.name)) || null;
  const approx = files.find((f) => /^model\.(pt|safetensors)$/i.test(f.name)) || null;
  if (!decoder && !encoder && !approx) return;
  try {
    const r = await request({ type: 'taesd', decoder, encoder, approx });
    lastTaesd = files;
    const have = [r.decoder && 'TAESD decoder', r.encoder && 'TAESD encoder', r.approx && 'VAE-approx'];
    status(`VAE-approx: ${have.filter(Boolean).join(', ')}`);
  } catch (e) { status(e.message, true); }
}

let lastLoras = [];
// `inOrder`: the files are in A1111's order already (a folder's Lora/ then LyCORIS/).
async function loadLoras(files, inOrder = false) {
  if (!files.length) return;
  status(`loading ${files.length} LoRA file(s)…`);
  try {
    const ordered = inOrder ? files : scanOrder(files);
    const r = await request({ type: 'loras', files: ordered });
    lastLoras = ordered;
    $('lora-list').textContent = r.names.length ? r.names.join(', ') : 'none';
    status(`LoRAs: ${r.names.length}, used with <lora:NAME:WEIGHT> in the prompt`);
  } catch (e) { status(e.message, true); }
}

let lastEmbeddings = [];
async function loadEmbeddings(files) {
  if (!files.length) return;
  status(`loading ${files.length} embedding file(s)…`);
  try {
    const ordered = scanOrder(files);
    const r = await request({ type: 'embeddings', files: ordered });
    lastEmbeddings = ordered;
    $('embedding-list').textContent = r.names.length ? r.names.join(', ') : 'none';
    const note = r.warnings.length ? ` (${r.warnings.join('; ')})` : '';
    status(`embeddings: ${r.names.length} usable by name in prompts${note}`, r.warnings.length > 0);
  } catch (e) { status(e.message, true); }
}

let lastHypernets = [];
async function loadHypernets(files) {
  if (!files.length) return;
  status(`loading ${files.length} hypernetwork(s)…`);
  try {
    const r = await request({ type: 'hypernets', files });
    lastHypernets = files;
    const list = $('hypernet-list'); list.innerHTML = '';
    r.names.forEach((name, i) => {
      const label = document.createElement('label');
      const check = document.createElement('input');
      check.type = 'checkbox'; check.value = name; check.dataset.index = String(i);
      const strength = document.createElement('input');
      strength.type = 'number'; strength.step = '0.05'; strength.min = '0'; strength.max = '2';
      strength.value = '1'; strength.id = `hn-strength-${i}`; strength.title = 'strength';
      label.append(check, ` ${name} `, strength);
      list.append(label);
    });
    status(`hypernetworks: ${r.names.join(', ')} (or use <hypernet:NAME:STRENGTH> in the prompt)`);
  } catch (e) { status(e.message, true); }
}

function filesFromInputs() {
  return { checkpoint: $('ckpt').files[0], yaml: $('yaml').files[0] || null, vae: $('vae').files[0] || null };
}

function wire() {
  $('ckpt').addEventListener('change', () => { $('load').disabled = !$('ckpt').files.length; });
  $('load').addEventListener('click', () => loadModel(filesFromInputs()));
  $('folder').addEventListener('change', () => {
    const all = [...$('folder').files];
    folderModels = discover(all.filter((f) => !/(^|\/)hypernetworks\//.test(f.webkitRelativePath)));
    const hns = all.filter((f) => /(^|\/)hypernetworks\/.*\.(pt|safetensors)$/i.test(f.webkitRelativePath));
    const embs = all.filter((f) => /(^|\/)embeddings\/.*\.(pt|bin|safetensors)$/i.test(f.webkitRelativePath));
    const taesd = all.filter((f) => /(^|\/)VAE-approx\/(taesd_(de|en)coder\.(pth|pt|safetensors)|model\.pt)$/i.test(f.webkitRelativePath));
    // A1111 reads Lora/ before LyCORIS/.
    const loraIn = (dir) => all.filter((f) => new RegExp(`(^|/)${dir}/.*\\.(safetensors|pt|ckpt)$`, 'i').test(f.webkitRelativePath));
    const loras = [...scanOrder(loraIn('Lora')), ...scanOrder(loraIn('LyCORIS'))];
    const sel = $('model'); sel.innerHTML = '';
    folderModels.forEach((m, i) => sel.add(new Option(m.label, String(i))));
    if (folderModels.length) loadModel(folderModels[0]).then(() => loadHypernets(hns)).then(() => loadEmbeddings(embs)).then(() => loadLoras(loras, true)).then(() => loadTaesd(taesd));
    else status('no .ckpt or .safetensors in that folder', true);
  });
  $('model').addEventListener('change', () => {
    const m = folderModels[Number($('model').value)];
    if (m) loadModel(m);
  });
  $('hypernets').addEventListener('change', () => loadHypernets([...$('hypernets').files]));
  $('embeddings').addEventListener('change', () => loadEmbeddings([...$('embeddings').files]));
  $('loras').addEventListener('change', () => loadLoras([...$('loras').files]));
  $('taesd').addEventListener('change', () => loadTaesd([...$('taesd').files]));
  $('generate').addEventListener('click', generate);
  $('cancel').addEventListener('click', cancel);
  $('random-seed').addEventListener('click', () => { $('seed').value = '-1'; });
  document.addEventListener('dragover', (e) => e.preventDefault());
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    const files = [...e.dataTransfer.files];
    const png = files.find((f) => /\.png$/i.test(f.name));
    if (png) { fillFromPng(png).catch((err) => status(err.message, true)); return; }
    const found = discover(files);
    if (found.length) loadModel(found[0]);
  });
}

wire();
startWorker().then(() => { state('ready'); status('ready: pick a model'); })
  .catch((e) => { status(e.message, true); state('error'); });
