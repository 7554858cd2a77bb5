// The page on a real-size checkpoint: full-size SD1.5 (random weights, fp16 safetensors,
// 2.1 GB, written by `easel bench --write-checkpoint`) picked through the page's file input,
// loaded onto WebGPU (SwiftShader here), then one 64x64 Euler step with CFG 7 — every op of
// the text encoder, the UNet and the VAE at their real widths and head dims, the VAE's
// 512-wide single-head attention included. The image must equal the native CLI's on the CPU
// backend from the same file within 2 levels (the page keeps weights in f16 as the file
// does; the CPU computes in f32), and so must `easel generate --backend wgpu` (Vulkan). Memory is sampled while it runs: the page's wasm heap (the
// checkpoint must never be held there whole) and the resident memory of Chromium's
// processes. Figures go to target/web-e2e/full-size.json.
//
// Run from the repository root after web/ci.sh built web/dist:
//   easel bench --write-checkpoint target/web-e2e/sd15-random.safetensors
//   FULL_SIZE_CKPT=target/web-e2e/sd15-random.safetensors node web/tests/e2e_full_size.mjs
import { readFileSync, writeFileSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve, basename } from 'node:path';
import { execFileSync } from 'node:child_process';
import { ROOT, OUT, fail, readPng, serve, launchChromium, waitState, maxDiff, fillForm } from './harness.mjs';

const TOLERANCE = 2;
const CKPT = resolve(process.env.FULL_SIZE_CKPT || join(OUT, 'sd15-random.safetensors'));
const RUN = { prompt: 'a lighthouse on a cliff at dusk', negative: 'blurry', steps: 1, sampler: 'Euler',
  cfg: 7, seed: 42, width: 64, height: 64, rng: 'cpu' };

// Resident memory (bytes) of every Chromium process, from /proc.
function chromiumRss() {
  const out = execFileSync('ps', ['-C', 'chromium', '-o', 'rss=,args='], { encoding: 'utf8' }).trim();
  let total = 0, gpu = 0;
  for (const line of out.split('\n').filter(Boolean)) {
    const [rss, ...args] = line.trim().split(/\s+/);
    const bytes = Number(rss) * 1024;
    total += bytes;
    if (args.join(' ').includes('--type=gpu-process')) gpu = Math.max(gpu, bytes);
  }
  return { total, gpu };
}

async function main() {
  mkdirSync(OUT, { recursive: true });
  const ckptBytes = statSync(CKPT).size;
  const { server, port } = await serve();
  const browser = await launchChromium();
  const figures = { checkpointBytes: ckptBytes };
  const peaks = { chromiumRssBytes: 0, gpuProcessRssBytes: 0, wasmHeapBytes: 0 };
  let page;
  const sample = async () => {
    try {
      const { total, gpu } = chromiumRss();
      peaks.chromiumRssBytes = Math.max(peaks.chromiumRssBytes, total);
      peaks.gpuProcessRssBytes = Math.max(peaks.gpuProcessRssBytes, gpu);
      // The worker reports its heap during the load too (every 64 MiB read): the peak of those.
      const heap = page ? await page.evaluate(() => window.easel && (window.easel.memoryPeakBytes || window.easel.memoryBytes) || 0) : 0;
      peaks.wasmHeapBytes = Math.max(peaks.wasmHeapBytes, heap);
    } catch { /* a sample during navigation */ }
  };
  const sampler = setInterval(sample, 2000);
  try {
    page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on('console', (m) => console.log(`[page ${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
    await page.goto(`http://127.0.0.1:${port}/`);
    await waitState(page, 'ready', 120_000);
    console.log(`adapter: ${await page.textContent('#gpu')}`);

    let t0 = Date.now();
    await page.setInputFiles('#ckpt', CKPT);
    await waitState(page, 'loaded', 1_800_000);
    figures.loadSeconds = (Date.now() - t0) / 1000;
    figures.wasmHeapAfterLoadBytes = await page.evaluate(() => window.easel.memoryBytes);
    figures.wasmHeapPeakDuringLoadBytes = await page.evaluate(() => window.easel.memoryPeakBytes);
    console.log(`loaded ${basename(CKPT)} (${(ckptBytes / 1e9).toFixed(2)} GB) in ${figures.loadSeconds.toFixed(1)} s; ` +
      `wasm heap ${(figures.wasmHeapAfterLoadBytes / 2 ** 20).toFixed(1)} MiB`);

    await fillForm(page, RUN);
    t0 = Date.now();
    await page.click('#generate');
    await waitState(page, 'done', 1_800_000);
    figures.generateSeconds = (Date.now() - t0) / 1000;
    await sample();
    const png = Buffer.from(await page.evaluate(() => Array.from(window.easel.results[0].png)));
    writeFileSync(join(OUT, 'web-full-size.png'), png);
    const web = readPng(png);

    // The native CLI from the same file: the CPU backend (the reference) and the wgpu one
    // (Vulkan; lavapipe here), both through `easel generate --model FILE`.
    const native = {};
    for (const backend of ['cpu', 'wgpu']) {
      const path = join(OUT, `native-full-size-${backend}.png`);
      t0 = Date.now();
      execFileSync(join(ROOT, 'target/debug/easel'), ['generate', '--backend', backend,
        '--model', CKPT, '--prompt', RUN.prompt, '--negative', RUN.negative,
        '--steps', String(RUN.steps), '--sampler', RUN.sampler, '--cfg', String(RUN.cfg), '--seed', String(RUN.seed),
        '--size', `${RUN.width}x${RUN.height}`, '--rng', RUN.rng, '--output', path], { stdio: 'inherit' });
      figures[`native_${backend}_seconds`] = (Date.now() - t0) / 1000;
      native[backend] = readPng(readFileSync(path));
    }
    for (const [what, img] of [['page (WebGPU)', web], ['native wgpu', native.wgpu]]) {
      const d = maxDiff(img.rgb, native.cpu.rgb);
      figures[`maxPixelDiff_${what.replace(/\W+/g, '_')}`] = d;
      console.log(`full size: max pixel difference ${what} vs native CPU: ${d} (tolerance ${TOLERANCE})`);
      if (d > TOLERANCE) fail(`the ${what} full-size image differs from the CPU backend's by ${d}`);
      if (img.text.parameters !== native.cpu.text.parameters)
        fail(`${what}: infotexts differ:\n${img.text.parameters}\ncpu: ${native.cpu.text.parameters}`);
    }
    // The checkpoint streams through the worker by byte range: the heap stays far below it.
    if (peaks.wasmHeapBytes > ckptBytes / 4)
      fail(`the wasm heap reached ${peaks.wasmHeapBytes} bytes for a ${ckptBytes}-byte checkpoint`);
  } finally {
    clearInterval(sampler);
    Object.assign(figures, peaks);
    writeFileSync(join(OUT, 'full-size.json'), JSON.stringify(figures, null, 2));
    console.log(`full-size e2e figures: ${JSON.stringify(figures)}`);
    await browser.close();
    server.close();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
