// 2-D convolution as an implicit GEMM: out[o, pixel] = sum_kk w[o, kk] * patch[kk, pixel] with
// kk = (channel, ky, kx) and the patch gathered from x on the fly (zero outside the image), so
// no im2col buffer exists. Tiled like linear.wgsl: rows are output channels, columns output
// pixels of all images of the dispatch; the host picks the tile shape (WX, WY, RM, RN, TK)
// per call, narrow where there are few pixels (the UNet's deepest layers), substitutes the
// kernel size KS, and writes the RM x RN accumulators out as scalars at the `@` markers (as
// in linear.wgsl). Weights (binding 2) come from the weight prelude.
//
// When x or y exceed one storage binding the host splits the convolution: per image, over
// ranges of output channels and of input channels. A dispatch then sees `c` input channels
// (weight columns k_first.. of rows `w_stride` long) and `o` output channels (bias from
// o_first); with `accumulate` it adds to what earlier input-channel ranges wrote. The
// offsets place the dispatch's first element in the (windowed) bindings.

struct Params {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    o: u32,
    oh: u32,
    ow: u32,
    stride: u32,
    pad: u32,
    has_bias: u32,
    kdim: u32,
    npix: u32,
    w_stride: u32,
    k_first: u32,
    o_first: u32,
    accumulate: u32,
    x_off: u32,
    w_off: u32,
    y_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const TM: u32 = WY * RM;
const TN: u32 = WX * RN;
const THREADS: u32 = WX * WY;
const KK2: u32 = KS * KS;
// Patch rows one invocation stages per k-slice step (every tile's TN divides THREADS).
const KK_STEP: u32 = THREADS / TN;

var<workgroup> ws: array<f32, TK * TM>; // [TK][TM] weight rows (output channels)
var<workgroup> xs: array<f32, TK * TN>; // [TK][TN] patch columns (output pixels)

@compute @workgroup_size(WX, WY)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row0 = wg.y * TM;
    let col0 = wg.x * TN;
    let plane = p.oh * p.ow;
    // The patch column this invocation stages is the same in every k-slice: its pixel's
    // image and position are worked out once, not per element (integer division costs
    // dozens of instructions on GPUs and more on software adapters).
    let col = li % TN;
    let pix = col0 + col;
    let pix_ok = pix < p.npix;
    let img = pix / plane;
    let rem = pix % plane;
    let iy0 = i32((rem / p.ow) * p.stride) - i32(p.pad);
    let ix0 = i32((rem % p.ow) * p.stride) - i32(p.pad);
    let x_img = img * p.c * p.h * p.w + p.x_off;
    // @accumulators
    for (var k0 = 0u; k0 < p.kdim; k0 += TK) {
        // Weights: consecutive invocations read consecutive kk of one output channel.
        for (var e = li; e < TK * TM; e += THREADS) {
            let r = e / TK;
            let kk = e % TK;
            let gk = k0 + kk;
            let oc = row0 + r;
            var wv = 0.0;
            if (oc < p.o && gk < p.kdim) {
                wv = load_w(oc * p.w_stride + p.k_first + gk + p.w_off);
            }
            ws[kk * TM + r] = wv;
        }
        // Patch: consecutive invocations read consecutive output pixels; the kernel size
        // is a constant, so the (channel, tap) split of k needs no division.
        for (var kk = li / TN; kk < TK; kk += KK_STEP) {
            let pk = k0 + kk;
            var xv = 0.0;
            if (pix_ok && pk < p.kdim) {
                let ci = pk / KK2;
                let kr = pk % KK2;
                let iy = iy0 + i32(kr / KS);
                let ix = ix0 + i32(kr % KS);
                if (iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w)) {
                    xv = x[x_img + (ci * p.h + u32(iy)) * p.w + u32(ix)];
                }
            }
            xs[kk * TN + col] = xv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            // @multiply_accumulate
        }
        workgroupBarrier();
    }
    // @store
}

// Output channel `oc`, pixel `pix` of the dispatch: bias, and what earlier input-channel
// ranges wrote when accumulating.
fn store(oc: u32, pix: u32, acc: f32) {
    if (oc < p.o && pix < p.npix) {
        let plane = p.oh * p.ow;
        let yi = ((pix / plane) * p.o + oc) * plane + pix % plane + p.y_off;
        var v = acc;
        if (p.has_bias != 0u) {
            v += bias[p.o_first + oc];
        }
        if (p.accumulate != 0u) {
            v += y[yi];
        }
        y[yi] = v;
    }
}
