// End-to-end test of the web page in headless Chromium on WebGPU (SwiftShader): serve
// web/dist from 127.0.0.1 with the page's strict CSP, load the tiny fixture model through
// the file inputs, generate 64x64 with 3 Euler steps (also with a hypernetwork), and compare the PNG with the native
// CLI's for the same settings (max per-channel difference <= 2; the browser stores weights as
// f16, the CPU reference computes in f32) and check its infotext; then drop a NovelAI-style
// PNG (Euler a, ENSD 31337, clip skip 2, emphasis, GPU noise) and regenerate it; inpaint
// from an init image and mask picked in the form, and run hires fix, each against the CLI.
// Run from the repository root: `node web/tests/e2e.mjs` (after web/ci.sh built web/dist).
import { readFileSync, readdirSync, mkdirSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { ROOT, DIST, OUT, fail, readPng, serve, launchChromium, waitState as waitPageState, fillForm, maxDiff } from './harness.mjs';

const MODELS = join(ROOT, 'tests/fixtures/models');
const SD = join(MODELS, 'Stable-diffusion');
const TOLERANCE = 2;
const BASE = { negative: 'blurry', steps: 3, sampler: 'Euler', cfg: 7, width: 64, height: 64, rng: 'cpu' };
const CASES = [
  { ...BASE, label: 'plain', prompt: 'a red cube on a table', seed: 1234 },
  // A hypernetwork picked through the file input and applied by a prompt tag.
  { ...BASE, label: 'hypernet', prompt: 'a red cube <hypernet:tiny-nai:0.8>', seed: 99,
    expect: ['<hypernet:tiny-nai:0.8>'], absent: ['Hypernet:'] },
  // An A1111 hypernetwork with ReLU and layer norm: every op on the GPU (the browser cannot
  // read tensors back synchronously).
  { ...BASE, label: 'hypernet_relu', prompt: 'a red cube <hypernet:tiny-relu-ln:0.6>', seed: 98,
    expect: ['<hypernet:tiny-relu-ln:0.6>'] },
  // A1111's "swish" (torch's Hardswish): one of the activations beyond the ReLU family,
  // on the backend's element-wise kernel.
  { ...BASE, label: 'hypernet_swish', prompt: 'a red cube <hypernet:tiny-swish:0.7>', seed: 97,
    expect: ['<hypernet:tiny-swish:0.7>'] },
  // Textual-inversion embeddings picked through the file input, named in both prompts
  // (the native CLI reads the same files from embeddings/ beside models/).
  { ...BASE, label: 'embedding', prompt: 'a red cube, tinystyle', negative: 'quadstyle, blurry', seed: 7,
    previewMethod: 'Approx NN',
    expect: ['TI hashes: "tinystyle: ', 'quadstyle: '] },
  // A LoRA picked through the file input: the page loads the model again with it applied.
  { ...BASE, label: 'lora', prompt: 'a red cube <lora:tiny-lora:0.7>', seed: 8,
    expect: ['<lora:tiny-lora:0.7>', 'Lora hashes: "tiny-lora: '] },
  // TAESD's decoder (A1111's VAE type for decode), picked through the file input.
  { ...BASE, label: 'taesd', prompt: 'a red cube', seed: 9, vaeDecoder: 'TAESD', previewMethod: 'TAESD',
    cli: ['--vae-decoder', 'taesd'], expect: ['VAE Decoder: TAESD'] },
];
// A1111's legacy model hash, computed here independently: sha256 of 64 KiB at 1 MiB.
// A1111 v1.x's short hash (Model hash, VAE hash): the whole file's sha256, first 10 hex.
function shortHash(path) {
  return createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 10);
}

function legacyHash(path) {
  const b = readFileSync(path);
  return createHash('sha256').update(b.length > 0x100000 ? b.subarray(0x100000, 0x110000) : Buffer.alloc(0)).digest('hex').slice(0, 8);
}

// The native CLI's image for `c` (CPU backend, f32), decoded.
function nativeImage(c) {
  const out = join(OUT, `native-${c.label}.png`);
  execFileSync(join(ROOT, 'target/debug/easel'), ['generate', '--models', MODELS, '--model', 'tiny',
    '--prompt', c.prompt, '--negative', c.negative, '--steps', String(c.steps), '--sampler', c.sampler,
    '--cfg', String(c.cfg), '--seed', String(c.seed), '--size', `${c.width}x${c.height}`,
    '--rng', c.rng, ...(c.cli || []), '--output', out], { stdio: 'inherit' });
  return readPng(readFileSync(out));
}

// Server mode: the page served by `easel serve` runs the job there through /sdapi/v1, with
// the same form; the image equals the CLI's for the same settings.
async function serverMode(browser, timings) {
  const server = spawn(join(ROOT, 'target/debug/easel'), ['serve', '--port', '0', '--models', MODELS,
    '--dir', DIST, '--threads', '2'], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const origin = await new Promise((ok, bad) => {
      let out = '';
      server.stdout.on('data', (d) => { out += d; const m = out.match(/listening on (http:\/\/[0-9.:]+)\//); if (m) ok(m[1]); });
      server.on('exit', (c) => bad(new Error(`easel serve exited with ${c}: ${out}`)));
    });
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on('console', (m) => console.log(`[server page ${m.type()}] ${m.text()}`));
    await page.goto(origin + '/');
    await waitPageState(page, 'ready', 120_000);
    await page.waitForSelector('#target', { timeout: 30_000 });
    await page.selectOption('#target', 'server');
    await page.selectOption('#server-model', 'tiny');
    const c = CASES[0];
    await fillForm(page, c);
    const t0 = Date.now();
    await page.click('#generate');
    await waitPageState(page, 'done', 300_000);
    timings.generateMs_server = Date.now() - t0;
    const webPng = Buffer.from(await page.evaluate(() => Array.from(window.easel.results[0].png)));
    writeFileSync(join(OUT, 'web-server-mode.png'), webPng);
    const web = readPng(webPng);
    const native = readPng(readFileSync(join(OUT, `native-${c.label}.png`)));
    console.log(`server mode infotext: ${web.text.parameters}`);
    if (web.text.parameters !== native.text.parameters)
      fail(`server mode's infotext differs:\nserver: ${web.text.parameters}\nnative: ${native.text.parameters}`);
    const diff = maxDiff(web.rgb, native.rgb);
    timings.maxPixelDiff_server = diff;
    console.log(`server mode: max pixel difference vs native: ${diff}`);
    if (diff > TOLERANCE) fail(`server mode made another image (difference ${diff})`);
    await page.screenshot({ path: join(OUT, 'page-server-mode.png'), fullPage: true });
  } finally {
    server.kill();
  }
}

async function main() {
  mkdirSync(OUT, { recursive: true });
  const { server, requests, port } = await serve();
  const origin = `http://127.0.0.1:${port}`;
  const browser = await launchChromium();
  const timings = {};
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const foreign = [];
    page.on('request', (r) => { const u = r.url(); if (!u.startsWith(origin) && !u.startsWith('blob:') && !u.startsWith('data:')) foreign.push(u); });
    page.on('console', (m) => console.log(`[page ${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
    const waitState = (want, timeout) => waitPageState(page, want, timeout);
    const t0 = Date.now();
    await page.goto(origin + '/');
    await waitState('ready', 120_000);
    timings.pageReadyMs = Date.now() - t0;
    timings.initGpuMs = await page.evaluate(() => window.easel.timings.initMs);
    console.log(`adapter: ${await page.textContent('#gpu')}`);

    // A file that is not a checkpoint gives an error naming it.
    await page.setInputFiles('#ckpt', join(SD, 'tiny.yaml'));
    await page.waitForFunction(() => document.body.dataset.state === 'error', null, { timeout: 60_000 });
    const badMsg = await page.textContent('#status');
    if (!badMsg.includes('tiny.yaml')) fail(`error for a non-checkpoint does not name the file: ${badMsg}`);
    console.log(`non-checkpoint rejected: ${badMsg}`);

    // The sidecars first: picking the checkpoint loads it (with what is picked beside it).
    await page.setInputFiles('#yaml', join(SD, 'tiny.yaml'));
    await page.setInputFiles('#vae', join(SD, 'tiny.vae.pt'));
    await page.setInputFiles('#ckpt', join(SD, 'tiny.ckpt'));
    await waitState('loaded', 300_000);
    timings.loadMs = await page.evaluate(() => window.easel.timings.loadMs);
    timings.wasmHeapAfterLoadBytes = await page.evaluate(() => window.easel.memoryBytes);
    await page.setInputFiles('#hypernets', ['tiny-nai.pt', 'a1111/tiny-relu-ln.pt', 'a1111/tiny-swish.pt']
      .map((f) => join(MODELS, 'hypernetworks', f)));
    await page.waitForSelector('#hypernet-list input[value="tiny-nai"]', { timeout: 60_000 });
    const EMB = join(ROOT, 'tests/fixtures/embeddings');
    const embFiles = ['diffconcept.bin', 'oldti.pt', 'quadstyle.pt', 'stemb.safetensors', 'tinyneg.pt',
      'tinystyle-v2.pt', 'tinystyle.pt', 'concepts/stsingle.safetensors'].map((f) => join(EMB, f));
    await page.setInputFiles('#embeddings', embFiles);
    await page.waitForFunction(() => document.getElementById('embedding-list').textContent.includes('tinystyle'),
      null, { timeout: 60_000 }).catch(async () => fail(`embeddings not loaded: ${await page.textContent('#status')}`));
    console.log(`embeddings: ${await page.textContent('#embedding-list')}`);
    const loraDir = join(MODELS, 'Lora');
    const loraFiles = readdirSync(loraDir).filter((f) => /\.(safetensors|pt|ckpt)$/.test(f)).sort()
      .map((f) => join(loraDir, f));
    await page.setInputFiles('#loras', loraFiles);
    await page.waitForFunction(() => document.getElementById('lora-list').textContent.includes('tiny-lora'),
      null, { timeout: 60_000 }).catch(async () => fail(`LoRAs not loaded: ${await page.textContent('#status')}`));
    console.log(`LoRAs: ${await page.textContent('#lora-list')}`);
    await page.setInputFiles('#taesd', ['taesd_decoder.pth', 'taesd_encoder.pth', 'model.pt'].map((f) => join(MODELS, 'VAE-approx', f)));
    await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('VAE-approx: TAESD decoder'),
      null, { timeout: 60_000 }).catch(async () => fail(`TAESD not loaded: ${await page.textContent('#status')}`));

    const hnHash = legacyHash(join(MODELS, 'hypernetworks/tiny-nai.pt'));
    for (const c of CASES) {
      const native = nativeImage(c);
      await fillForm(page, c);
      await page.selectOption('#vae-decoder', c.vaeDecoder || 'Full');
      await page.selectOption('#preview-method', c.previewMethod || 'Approx cheap');
      await page.evaluate(() => { window.easel.previews = []; });
      const before = await page.evaluate(() => window.easel.results.length);
      await page.click('#generate');
      await waitState('done', 540_000);
      timings[`generateMs_${c.label}`] = await page.evaluate(() => window.easel.timings.generateMs);
      if (c.previewMethod) {
        // A1111's network preview: VAE-approx at twice the latent's size, TAESD at full size.
        await page.waitForFunction(() => window.easel.previews.length > 0, null, { timeout: 60_000 })
          .catch(() => fail(`${c.label}: no ${c.previewMethod} live preview arrived`));
        const pv = await page.evaluate(() => window.easel.previews[0]);
        const want = c.previewMethod === 'TAESD' ? c.width : c.width / 4;
        if (pv.width !== want || pv.height !== (c.previewMethod === 'TAESD' ? c.height : c.height / 4))
          fail(`${c.label}: ${c.previewMethod} preview is ${pv.width}x${pv.height}`);
        console.log(`${c.label}: ${c.previewMethod} live preview ${pv.width}x${pv.height}`);
      }
      await page.screenshot({ path: join(OUT, `page-${c.label}.png`), fullPage: true });

      const pngBytes = Buffer.from(await page.evaluate((i) => Array.from(window.easel.results[i].png), before));
      writeFileSync(join(OUT, `web-${c.label}.png`), pngBytes);
      const web = readPng(pngBytes);
      if (web.width !== c.width || web.height !== c.height) fail(`${c.label}: web image is ${web.width}x${web.height}`);
      const diff = maxDiff(web.rgb, native.rgb);
      timings[`maxPixelDiff_${c.label}`] = diff;
      console.log(`${c.label}: max pixel difference web vs native: ${diff} (tolerance ${TOLERANCE})`);
      if (diff > TOLERANCE) fail(`${c.label}: image differs from the native CLI's by ${diff} > ${TOLERANCE}`);

      const info = web.text.parameters;
      if (!info) fail(`${c.label}: the PNG has no parameters chunk`);
      const expect = [c.prompt, `Negative prompt: ${c.negative}`, `Steps: ${c.steps}`,
        `Sampler: ${c.sampler}`, `CFG scale: ${c.cfg}`, `Seed: ${c.seed}`,
        `Size: ${c.width}x${c.height}`, `Model hash: ${shortHash(join(SD, 'tiny.ckpt'))}`,
        'Model: tiny', `VAE hash: ${shortHash(join(SD, 'tiny.vae.pt'))}`, 'VAE: tiny.vae.pt', 'RNG: CPU', ...(c.expect || []).map((e) => e.replace('$HNHASH', hnHash))];
      for (const e of expect) if (!info.includes(e)) fail(`${c.label}: infotext lacks \`${e}\`:\n${info}`);
      for (const a of c.absent || []) if (info.includes(a)) fail(`${c.label}: infotext has \`${a}\` (A1111 would apply the tag twice):\n${info}`);
      if (info !== native.text.parameters) fail(`${c.label}: infotext differs from the native one:\nweb:    ${info}\nnative: ${native.text.parameters}`);
    }
    await page.selectOption('#vae-decoder', 'Full');
    // Dropping a PNG fills the form from its infotext (read by the wasm side).
    const dropped = readFileSync(join(OUT, 'native-plain.png'));
    await page.fill('#seed', '-1');
    await page.evaluate((bytes) => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(bytes)], 'native-plain.png', { type: 'image/png' }));
      document.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, Array.from(dropped));
    await page.waitForFunction(() => document.body.dataset.state === 'filled', null, { timeout: 30_000 });
    const filled = await page.evaluate(() => ({ seed: document.getElementById('seed').value,
      prompt: document.getElementById('prompt').value, width: document.getElementById('width').value }));
    if (filled.seed !== String(CASES[0].seed) || filled.prompt !== CASES[0].prompt || filled.width !== '64')
      fail(`dropping a PNG filled the form wrongly: ${JSON.stringify(filled)}`);
    console.log(`dropped PNG filled the form: ${JSON.stringify(filled)}`);

    // A NovelAI-style PNG (ancestral sampler with ENSD 31337, clip skip 2, emphasis, GPU
    // noise) dropped on the page restores every field, and Generate then makes the image the
    // native CLI made from the same settings.
    const nai = join(OUT, 'native-nai.png');
    execFileSync(join(ROOT, 'target/debug/easel'), ['generate', '--models', MODELS, '--model', 'tiny',
      '--prompt', 'masterpiece, (red:1.2) cube, [blue] sky', '--negative', 'lowres', '--steps', '3',
      '--sampler', 'Euler a', '--cfg', '9', '--seed', '31', '--size', '64x64', '--rng', 'gpu',
      '--ensd', '31337', '--clip-skip', '2', '--output', nai], { stdio: 'inherit' });
    const naiNative = readPng(readFileSync(nai));
    if (!naiNative.text.parameters.includes('ENSD: 31337')) fail(`native NovelAI-style PNG lacks ENSD: ${naiNative.text.parameters}`);
    await page.fill('#seed', '-1');
    await page.evaluate((bytes) => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(bytes)], 'native-nai.png', { type: 'image/png' }));
      document.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, Array.from(readFileSync(nai)));
    await page.waitForFunction(() => document.body.dataset.state === 'filled', null, { timeout: 30_000 });
    const naiBefore = await page.evaluate(() => window.easel.results.length);
    await page.click('#generate');
    await waitState('done', 540_000);
    const naiWeb = readPng(Buffer.from(await page.evaluate((i) => Array.from(window.easel.results[i].png), naiBefore)));
    const naiDiff = maxDiff(naiWeb.rgb, naiNative.rgb);
    timings.maxPixelDiff_novelai_png = naiDiff;
    console.log(`NovelAI-style PNG dropped and regenerated: max pixel difference ${naiDiff} (tolerance ${TOLERANCE})`);
    if (naiDiff > TOLERANCE) fail(`the dropped NovelAI-style PNG regenerated a different image (difference ${naiDiff})`);
    if (naiWeb.text.parameters !== naiNative.text.parameters)
      fail(`the dropped PNG regenerated with other settings:\nweb:    ${naiWeb.text.parameters}\nnative: ${naiNative.text.parameters}`);

    // Inpainting (an init image and a mask picked through the form), then hires fix, each
    // against the native CLI for the same settings.
    const IMAGES = join(ROOT, 'tests/fixtures/image');
    const formCases = [
      { label: 'inpaint', files: { '#init-image': join(IMAGES, 'in_rgb.png'), '#mask': join(IMAGES, 'in_mask.png') },
        fill: { '#denoising': '0.6', '#mask-blur': '2' }, select: { '#inpainting-fill': '1' }, check: {},
        args: ['--init-img', join(IMAGES, 'in_rgb.png'), '--mask', join(IMAGES, 'in_mask.png'),
          '--denoising-strength', '0.6', '--mask-blur', '2', '--inpainting-fill', 'original'],
        size: [64, 64], expect: ['Denoising strength: 0.6', 'Mask blur: 2'] },
      { label: 'hires', files: { '#init-image': [], '#mask': [] },
        fill: { '#denoising': '0.5', '#hr-scale': '1.5', '#hr-steps': '2' },
        select: { '#hr-upscaler': 'Latent (nearest)' }, check: { '#enable-hr': true },
        args: ['--hires', '--hr-scale', '1.5', '--hr-upscaler', 'Latent (nearest)', '--hr-second-pass-steps', '2',
          '--denoising-strength', '0.5'],
        size: [96, 96], expect: ['Hires upscale: 1.5', 'Hires steps: 2', 'Hires upscaler: Latent (nearest)'] },
    ];
    // The img2img and hires fields sit in closed <details>: open them as a user would.
    await page.evaluate(() => { for (const d of document.querySelectorAll('details')) d.open = true; });
    for (const c of formCases) {
      const out = join(OUT, `native-${c.label}.png`);
      execFileSync(join(ROOT, 'target/debug/easel'), ['generate', '--models', MODELS, '--model', 'tiny',
        '--prompt', 'a red cube on a table', '--negative', 'blurry', '--steps', '3', '--sampler', 'Euler',
        '--cfg', '7', '--seed', '77', '--size', '64x64', '--rng', 'cpu', ...c.args, '--output', out], { stdio: 'inherit' });
      const native = readPng(readFileSync(out));
      await page.fill('#prompt', 'a red cube on a table');
      await page.fill('#negative', 'blurry');
      await page.selectOption('#sampler', 'Euler');
      await page.selectOption('#schedule', 'Automatic');
      await page.fill('#steps', '3'); await page.fill('#cfg', '7'); await page.fill('#seed', '77');
      await page.fill('#width', '64'); await page.fill('#height', '64');
      await page.selectOption('#rng', 'cpu'); await page.selectOption('#emphasis', 'Original');
      await page.fill('#clip-skip', '1'); await page.fill('#ensd', '0');
      for (const [sel, f] of Object.entries(c.files)) await page.setInputFiles(sel, f);
      for (const [sel, v] of Object.entries(c.fill)) await page.fill(sel, v);
      for (const [sel, v] of Object.entries(c.select)) await page.selectOption(sel, v);
      for (const [sel, v] of Object.entries(c.check)) await page.setChecked(sel, v);
      const before = await page.evaluate(() => window.easel.results.length);
      await page.click('#generate');
      await waitState('done', 540_000);
      timings[`generateMs_${c.label}`] = await page.evaluate(() => window.easel.timings.generateMs);
      const web = readPng(Buffer.from(await page.evaluate((i) => Array.from(window.easel.results[i].png), before)));
      if (web.width !== c.size[0] || web.height !== c.size[1]) fail(`${c.label}: web image is ${web.width}x${web.height}`);
      const diff = maxDiff(web.rgb, native.rgb);
      timings[`maxPixelDiff_${c.label}`] = diff;
      console.log(`${c.label}: max pixel difference web vs native: ${diff} (tolerance ${TOLERANCE})`);
      if (diff > TOLERANCE) fail(`${c.label}: image differs from the native CLI's by ${diff} > ${TOLERANCE}`);
      for (const e of c.expect) if (!web.text.parameters.includes(e)) fail(`${c.label}: infotext lacks \`${e}\`:\n${web.text.parameters}`);
      if (web.text.parameters !== native.text.parameters)
        fail(`${c.label}: infotext differs from the native one:\nweb:    ${web.text.parameters}\nnative: ${native.text.parameters}`);
    }
    await page.setChecked('#enable-hr', false);

    // Hires fix with an ESRGAN model picked through the upscaler input, against the CLI with
    // the same file in the models folder's ESRGAN/.
    {
      const esrgan = join(ROOT, 'tests/fixtures/upscalers/models/ESRGAN/tiny-esrgan-x4.pth');
      const models = join(OUT, 'models-esrgan');
      for (const [dir, files] of [['Stable-diffusion', ['tiny.ckpt', 'tiny.yaml', 'tiny.vae.pt']], ['ESRGAN', []]]) {
        mkdirSync(join(models, dir), { recursive: true });
        for (const f of files) copyFileSync(join(SD, f), join(models, dir, f));
      }
      copyFileSync(esrgan, join(models, 'ESRGAN', 'tiny-esrgan-x4.pth'));
      const out = join(OUT, 'native-hires-esrgan.png');
      execFileSync(join(ROOT, 'target/debug/easel'), ['generate', '--models', models, '--model', 'tiny',
        '--prompt', 'a red cube on a table', '--negative', 'blurry', '--steps', '3', '--sampler', 'Euler',
        '--cfg', '7', '--seed', '77', '--size', '64x64', '--rng', 'cpu', '--hires', '--hr-scale', '2',
        '--hr-upscaler', 'tiny-esrgan-x4', '--hr-second-pass-steps', '2', '--denoising-strength', '0.5',
        '--output', out], { stdio: 'inherit' });
      await page.setInputFiles('#upscalers', esrgan);
      await page.waitForFunction(() => document.getElementById('upscaler-list').textContent.includes('tiny-esrgan-x4'),
        null, { timeout: 60_000 }).catch(async () => fail(`the upscaler was not loaded: ${await page.textContent('#status')}`));
      await page.setChecked('#enable-hr', true);
      await page.selectOption('#hr-upscaler', 'tiny-esrgan-x4');
      await page.fill('#hr-scale', '2');
      const before = await page.evaluate(() => window.easel.results.length);
      await page.click('#generate');
      await waitState('done', 540_000);
      const native = readPng(readFileSync(out));
      const web = readPng(Buffer.from(await page.evaluate((i) => Array.from(window.easel.results[i].png), before)));
      if (web.width !== 128 || web.height !== 128) fail(`hires with ESRGAN: web image is ${web.width}x${web.height}`);
      const diff = maxDiff(web.rgb, native.rgb);
      timings.maxPixelDiff_hires_esrgan = diff;
      console.log(`hires_esrgan: max pixel difference web vs native: ${diff} (tolerance ${TOLERANCE})`);
      if (diff > TOLERANCE) fail(`hires with ESRGAN differs from the native CLI's by ${diff}`);
      if (web.text.parameters !== native.text.parameters)
        fail(`hires with ESRGAN: infotext differs:\nweb:    ${web.text.parameters}\nnative: ${native.text.parameters}`);
      await page.setChecked('#enable-hr', false);
    }

    // Batch count 2: two jobs' seeds (seed, seed + 1) in one run, each image equal to the
    // CLI's `--batch-count 2` image.
    {
      const out = join(OUT, 'native-batch.png');
      execFileSync(join(ROOT, 'target/debug/easel'), ['generate', '--models', MODELS, '--model', 'tiny',
        '--prompt', 'a red cube on a table', '--negative', 'blurry', '--steps', '3', '--sampler', 'Euler',
        '--cfg', '7', '--seed', '55', '--size', '64x64', '--rng', 'cpu', '--batch-count', '2', '--output', out], { stdio: 'inherit' });
      await page.fill('#seed', '55'); await page.fill('#batch-count', '2');
      const before = await page.evaluate(() => window.easel.results.length);
      await page.click('#generate');
      await waitState('done', 540_000);
      for (const [i, file] of [[0, out], [1, join(OUT, 'native-batch-2.png')]]) {
        const native = readPng(readFileSync(file));
        const web = readPng(Buffer.from(await page.evaluate((k) => Array.from(window.easel.results[k].png), before + i)));
        const diff = maxDiff(web.rgb, native.rgb);
        timings[`maxPixelDiff_batch_${i + 1}`] = diff;
        console.log(`batch count image ${i + 1}: max pixel difference ${diff}`);
        if (diff > TOLERANCE) fail(`batch count image ${i + 1} differs from the CLI's by ${diff}`);
        if (web.text.parameters !== native.text.parameters)
          fail(`batch count image ${i + 1}: infotext differs:\nweb:    ${web.text.parameters}\nnative: ${native.text.parameters}`);
      }
      // Skip ends the first image early and goes on with the second.
      await page.fill('#steps', '6');
      const beforeSkip = await page.evaluate(() => window.easel.results.length);
      await page.click('#generate');
      await page.waitForFunction(() => Number(document.getElementById('progress').value) >= 1, null, { timeout: 120_000 });
      await page.click('#skip');
      await waitState('done', 540_000);
      const made = await page.evaluate((b) => window.easel.results.length - b, beforeSkip);
      if (made !== 2) fail(`skip left ${made} images of a batch count of 2`);
      console.log('skip ended the first image and made the second');
      await page.fill('#batch-count', '1'); await page.fill('#steps', '3');
    }

    // Inpainting with a mask painted over the init image on the page's canvas.
    {
      await page.setInputFiles('#init-image', join(ROOT, 'tests/fixtures/image/in_rgb.png'));
      await page.setInputFiles('#mask', []);
      const canvas = await page.waitForSelector('#mask-canvas', { timeout: 10_000 });
      await canvas.scrollIntoViewIfNeeded();
      const box = await canvas.boundingBox();
      await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.5);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * 0.7, box.y + box.height * 0.5, { steps: 8 });
      await page.mouse.up();
      const before = await page.evaluate(() => window.easel.results.length);
      await page.click('#generate');
      await waitState('done', 540_000);
      const web = readPng(Buffer.from(await page.evaluate((i) => Array.from(window.easel.results[i].png), before)));
      if (!web.text.parameters.includes('Mask blur: ')) fail(`a painted mask made no inpainting job: ${web.text.parameters}`);
      const plainImg2img = readPng(readFileSync(join(OUT, 'native-inpaint.png')));
      console.log(`painted-mask inpainting: ${web.width}x${web.height}, differs from the file-mask job by ${maxDiff(web.rgb, plainImg2img.rgb)}`);
      await page.screenshot({ path: join(OUT, 'page-mask-painted.png'), fullPage: true });
      await page.click('#img2img button:has-text("Remove init image")');
    }

    // A gallery image sent to img2img becomes the init image.
    await page.click('#gallery .card .send-img2img');
    await page.waitForFunction(() => document.querySelector('#img2img summary').textContent.includes('easel-'), null, { timeout: 10_000 })
      .catch(() => fail('"Send to img2img" set no init image'));
    await page.click('#img2img button:has-text("Remove init image")');

    // A1111's token counter and Ctrl+Up/Down attention keys in the prompt box.
    await page.fill('#prompt', 'a red cube');
    await page.waitForFunction(() => document.getElementById('prompt-tokens').textContent === '3/75', null, { timeout: 10_000 })
      .catch(async () => fail(`token counter shows ${await page.textContent('#prompt-tokens')} for "a red cube" (CLIP: 3 tokens)`));
    await page.evaluate(() => { const t = document.getElementById('prompt'); t.focus(); t.setSelectionRange(4, 4); });
    await page.keyboard.press('Control+ArrowUp');
    const edited = await page.inputValue('#prompt');
    if (edited !== 'a (red:1.1) cube') fail(`Ctrl+Up on "red" made ${JSON.stringify(edited)}`);
    console.log(`token counter 3/75; Ctrl+Up: ${edited}`);

    // Every invalid form value is named, and nothing is sent.
    await page.fill('#steps', '0'); await page.fill('#width', '100'); await page.fill('#cfg', '');
    await page.click('#generate');
    await page.waitForFunction(() => document.body.dataset.state === 'invalid', null, { timeout: 10_000 });
    const invalid = await page.textContent('#status');
    for (const want of ['Sampling steps: 0', 'Width: 100 is not a multiple of 8', 'CFG scale: no value'])
      if (!invalid.includes(want)) fail(`the invalid-form message lacks \`${want}\`: ${invalid}`);
    console.log(`invalid form: ${invalid}`);
    await page.fill('#width', '64'); await page.fill('#cfg', '7');

    // Interrupt stops a running generation after a step, keeps its image and leaves the
    // model ready; while it runs, loading other files is disabled.
    await page.fill('#steps', '20');
    await page.click('#generate');
    await page.waitForFunction(() => Number(document.getElementById('progress').value) >= 1, null, { timeout: 120_000 });
    for (const sel of ['#ckpt', '#folder', '#hypernets', '#loras', '#model'])
      if (!(await page.isDisabled(sel))) fail(`${sel} is usable while a job runs`);
    await page.click('#cancel');
    await waitState('loaded', 300_000);
    if (await page.isDisabled('#generate')) fail('generate stays disabled after an interrupt');
    if (Number(await page.evaluate(() => document.getElementById('progress').value)) !== 0) fail('the progress bar keeps its value after an interrupt');
    console.log('interrupt stopped the generation; the model stays loaded');
    await page.screenshot({ path: join(OUT, 'page.png'), fullPage: true });

    // A whole models/ folder: its first checkpoint loads by itself (with its sidecars), the
    // model list shows names below Stable-diffusion/, and the folder's networks are loaded.
    await page.setInputFiles('#folder', MODELS);
    await page.waitForFunction(() => document.body.dataset.state === 'loaded'
      && document.getElementById('model').options.length > 1
      && document.getElementById('status').textContent.startsWith('VAE-approx:'), null, { timeout: 300_000 })
      .catch(async () => fail(`picking the models folder did not load it: ${await page.textContent('#status')}`));
    const listed = await page.evaluate(() => [...document.getElementById('model').options].map((o) => o.textContent));
    // By name, as the CLI lists a folder (files before subfolders).
    const want = readdirSync(SD).filter((f) => /\.(ckpt|safetensors)$/.test(f) && !f.includes('.vae.')).sort();
    if (JSON.stringify(listed) !== JSON.stringify(want))
      fail(`the folder's model list is ${JSON.stringify(listed)}, want ${JSON.stringify(want)}`);
    const info = await page.textContent('#model-info');
    console.log(`models folder: ${JSON.stringify(listed)}; loaded ${info}; hypernetworks ${await page.locator('#hypernet-list input[type=checkbox]').count()}`);

    // The gallery is kept in the browser (IndexedDB) and survives a reload.
    const cards = await page.locator('#gallery .card').count();
    const firstInfo = await page.textContent('#gallery .card .infotext');
    if (cards < CASES.length) fail(`the gallery has ${cards} images after ${CASES.length}+ jobs`);
    await page.reload();
    await waitState('ready', 120_000);
    await page.waitForFunction((n) => document.querySelectorAll('#gallery .card').length === n, cards, { timeout: 30_000 })
      .catch(async () => fail(`after a reload the gallery has ${await page.locator('#gallery .card').count()} of ${cards} images`));
    if (await page.textContent('#gallery .card .infotext') !== firstInfo) fail('the gallery lost its newest infotext on reload');
    if (await page.inputValue('#steps') !== '20') fail('the form was not remembered across the reload');
    console.log(`gallery kept ${cards} images and the form across a reload`);
    await page.screenshot({ path: join(OUT, 'page-reloaded.png'), fullPage: true });

    if (foreign.length) fail(`the page requested foreign URLs: ${foreign.join(', ')}`);
    // Its own assets, and the API probe (server mode is offered only when it answers).
    const assets = requests.filter((u) => !/^\/(|index\.html|main\.js|worker\.js|style\.css|pkg\/easel_web(_bg\.wasm|\.js)|sdapi\/v1\/sd-models)$/.test(u));
    if (assets.length) fail(`unexpected requests to the server: ${assets.join(', ')}`);
    timings.wasmBytes = readFileSync(join(DIST, 'pkg/easel_web_bg.wasm')).length;
    await serverMode(browser, timings);
    writeFileSync(join(OUT, 'timings.json'), JSON.stringify(timings, null, 2));
    console.log(`e2e passed: ${JSON.stringify(timings)}`);
  } finally {
    await browser.close();
    server.close();
  }
}

// EASEL_WEB_E2E_SERVER_ONLY=1: only the server-mode part (after a full run made its reference).
if (process.env.EASEL_WEB_E2E_SERVER_ONLY) {
  launchChromium().then(async (b) => { try { await serverMode(b, {}); } finally { await b.close(); } })
    .catch((e) => { console.error(e); process.exit(1); });
} else {
  main().catch((e) => { console.error(e); process.exit(1); });
}
