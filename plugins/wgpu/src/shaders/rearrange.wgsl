// Permutations of one f32 tensor for the upscaler networks, each output element reading the
// one input element its index maps to (torch semantics, as easel_core::backend_host
// defines them):
//   pixel shuffle    [N, C*r*r, H, W] -> [N, C, H*r, W*r]  d0 = r, d1 = H, d2 = W
//   pixel unshuffle  [N, C, H*r, W*r] -> [N, C*r*r, H, W]  d0 = r, d1 = H, d2 = W (output's)
//   window partition [N, H*W, C] -> [N*nW, ws*ws, C]: the grid rolled by -shift on both
//                    axes, cut into ws x ws windows, row-major
//   window merge     its inverse, rolled back by +shift
// (the window ops: d0 = ws, d1 = H, d2 = W, d3 = C, d4 = shift < ws).
// A dispatch covers output elements first..first+n; `x_base`/`y_base` are the elements
// the (possibly windowed) bindings begin at.

struct Params {
    n: u32,
    op: u32,
    first: u32,
    x_base: u32,
    y_base: u32,
    d0: u32,
    d1: u32,
    d2: u32,
    d3: u32,
    d4: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

const OP_PIXEL_SHUFFLE: u32 = 0u;
const OP_PIXEL_UNSHUFFLE: u32 = 1u;
const OP_WINDOW_PARTITION: u32 = 2u;
const OP_WINDOW_MERGE: u32 = 3u;

// out[n, c, h*r + i, w*r + j] = x[n, c*r*r + i*r + j, h, w]
fn pixel_shuffle(o: u32) -> u32 {
    let r = p.d0;
    let wo = p.d2 * r;
    let ho = p.d1 * r;
    let ox = o % wo;
    let oy = (o / wo) % ho;
    let plane = o / (wo * ho);
    let src_plane = plane * r * r + (oy % r) * r + ox % r;
    return (src_plane * p.d1 + oy / r) * p.d2 + ox / r;
}

// out[n, c*r*r + i*r + j, h, w] = x[n, c, h*r + i, w*r + j]
fn pixel_unshuffle(o: u32) -> u32 {
    let r = p.d0;
    let ox = o % p.d2;
    let oy = (o / p.d2) % p.d1;
    let plane = o / (p.d1 * p.d2);
    let ij = plane % (r * r);
    let src_plane = plane / (r * r);
    return (src_plane * p.d1 * r + oy * r + ij / r) * (p.d2 * r) + ox * r + ij % r;
}

// The window ops move whole tokens of C = d3 channels: each maps an output token t to the
// input token it reads (`main` adds the channel).

// Token (i, j) of window (wy, wx) of image n is pixel ((wy*ws + i + shift) mod H,
// (wx*ws + j + shift) mod W).
fn window_partition(t: u32) -> u32 {
    let ws = p.d0;
    let h = p.d1;
    let w = p.d2;
    let token = t % (ws * ws);
    let win = t / (ws * ws);
    let nw = w / ws;
    let per_image = (h / ws) * nw;
    let img = win / per_image;
    let wl = win % per_image;
    let sy = ((wl / nw) * ws + token / ws + p.d4) % h;
    let sx = ((wl % nw) * ws + token % ws + p.d4) % w;
    return (img * h + sy) * w + sx;
}

// Pixel (y, x) of image n is the token of the window holding ((y - shift) mod H,
// (x - shift) mod W) in the rolled grid.
fn window_merge(t: u32) -> u32 {
    let ws = p.d0;
    let h = p.d1;
    let w = p.d2;
    let pix = t % (h * w);
    let img = t / (h * w);
    let ry = (pix / w + h - p.d4) % h;
    let rx = (pix % w + w - p.d4) % w;
    let win = (img * (h / ws) + ry / ws) * (w / ws) + rx / ws;
    return (win * ws + ry % ws) * ws + rx % ws;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i >= p.n) {
        return;
    }
    let o = p.first + i;
    let c = p.d3;
    var src = 0u;
    switch p.op {
        case OP_PIXEL_SHUFFLE: { src = pixel_shuffle(o); }
        case OP_PIXEL_UNSHUFFLE: { src = pixel_unshuffle(o); }
        case OP_WINDOW_PARTITION: { src = window_partition(o / c) * c + o % c; }
        case OP_WINDOW_MERGE: { src = window_merge(o / c) * c + o % c; }
        default: {}
    }
    y[o - p.y_base] = x[src - p.x_base];
}
