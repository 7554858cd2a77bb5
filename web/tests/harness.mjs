// Shared by the page's browser tests (e2e.mjs, e2e_full_size.mjs): the static server with
// the page's strict CSP, Chromium with WebGPU on SwiftShader, a small PNG reader and the
// page's state waits.
import { createServer } from 'node:http';
import { readFileSync, existsSync } from 'node:fs';
import { join, extname, resolve, dirname } from 'node:path';
import { inflateSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DIST = join(ROOT, 'web/dist');
export const OUT = join(ROOT, 'target/web-e2e');
const CSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; " +
  "connect-src 'self'; style-src 'self'; img-src 'self' blob: data:; base-uri 'none'; form-action 'none'";
const MIME = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css' };

const require = createRequire(join(ROOT, 'web/tests/'));
const { chromium } = require('playwright-core');

export function fail(msg) { console.error(`e2e FAILED: ${msg}`); process.exitCode = 1; throw new Error(msg); }

// --- a minimal PNG reader: 8-bit RGB/RGBA, non-interlaced, plus tEXt chunks ---------------
export function readPng(buf) {
  if (buf.readUInt32BE(0) !== 0x89504e47) fail('not a PNG');
  let off = 8, width = 0, height = 0, colorType = 0, idat = [], text = {};
  while (off < buf.length) {
    const len = buf.readUInt32BE(off), type = buf.toString('latin1', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0); height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[12] !== 0) fail('unsupported PNG (bit depth / interlace)');
      colorType = data[9];
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'tEXt') { const z = data.indexOf(0); text[data.toString('latin1', 0, z)] = data.toString('latin1', z + 1); }
    else if (type === 'iTXt') {
      const z = data.indexOf(0); const key = data.toString('latin1', 0, z);
      const compressed = data[z + 1]; let p = z + 3;
      p = data.indexOf(0, p) + 1; p = data.indexOf(0, p) + 1;
      const body = data.subarray(p);
      text[key] = (compressed ? inflateSync(body) : body).toString('utf8');
    }
    off += 12 + len;
  }
  const bpp = colorType === 2 ? 3 : colorType === 6 ? 4 : fail(`PNG color type ${colorType}`);
  const raw = inflateSync(Buffer.concat(idat)), stride = width * bpp;
  const px = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)], line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? px[y * stride + x - bpp] : 0, b = y ? px[(y - 1) * stride + x] : 0;
      const c = x >= bpp && y ? px[(y - 1) * stride + x - bpp] : 0;
      let v = line[x];
      if (f === 1) v += a; else if (f === 2) v += b; else if (f === 3) v += (a + b) >> 1;
      else if (f === 4) { const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c; }
      px[y * stride + x] = v & 255;
    }
  }
  const rgb = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) for (let c = 0; c < 3; c++) rgb[i * 3 + c] = px[i * bpp + c];
  return { width, height, rgb, text };
}

export function serve() {
  const requests = [];
  const server = createServer((req, res) => {
    requests.push(req.url);
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = resolve(DIST, '.' + (path === '/' ? '/index.html' : path));
    if (!file.startsWith(DIST) || !existsSync(file)) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, {
      'content-type': MIME[extname(file)] || 'application/octet-stream',
      'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'cache-control': 'no-store',
    });
    res.end(readFileSync(file));
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok({ server, requests, port: server.address().port })));
}

// Headless Chromium with WebGPU on SwiftShader (no GPU here), nothing fetched from outside.
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--disable-quic',
      '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// Waits until the page's `data-state` is `want` (or `error`, which fails naming the status).
export async function waitState(page, want, timeout) {
  await page.waitForFunction((w) => [w, 'error'].includes(document.body.dataset.state), want, { timeout, polling: 250 });
  const s = await page.evaluate(() => document.body.dataset.state);
  if (s !== want) fail(`page reported an error: ${await page.textContent('#status')}`);
}

// The largest per-channel difference of two equally sized RGB buffers.
export function maxDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

// Fills the form's generation fields from `c` (prompt, negative, sampler with the Automatic
// schedule, steps, cfg, seed, width, height, rng).
export async function fillForm(page, c) {
  await page.fill('#prompt', c.prompt);
  await page.fill('#negative', c.negative);
  await page.selectOption('#sampler', c.sampler);
  await page.selectOption('#schedule', 'Automatic');
  await page.fill('#steps', String(c.steps));
  await page.fill('#cfg', String(c.cfg));
  await page.fill('#seed', String(c.seed));
  await page.fill('#width', String(c.width));
  await page.fill('#height', String(c.height));
  await page.selectOption('#rng', c.rng);
}
