// 2-D convolution as an implicit GEMM: out[o, pixel] = sum_kk w[o, kk] * patch[kk, pixel] with
// kk = (channel, ky, kx) and the patch gathered from x on the fly (zero outside the image), so
// no im2col buffer exists. Same 64x64 tiling as linear.wgsl: rows are output channels,
// columns are output pixels of all images. Weights (binding 2) come from the weight prelude.

struct Params {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    o: u32,
    oh: u32,
    ow: u32,
    ks: u32,
    stride: u32,
    pad: u32,
    has_bias: u32,
    kdim: u32,
    npix: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const TILE: u32 = 64u;
const TK: u32 = 16u;

var<workgroup> ws: array<f32, 1024>; // [TK][TILE] weight rows (output channels)
var<workgroup> xs: array<f32, 1024>; // [TK][TILE] patch columns (output pixels)

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row0 = wg.y * TILE;
    let col0 = wg.x * TILE;
    let plane = p.oh * p.ow;
    let kk2 = p.ks * p.ks;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < p.kdim; k0 += TK) {
        for (var i = 0u; i < 4u; i++) {
            let e = li + i * 256u;
            // Weights: consecutive invocations read consecutive kk of one output channel.
            let r = e / TK;
            let kk = e % TK;
            let gk = k0 + kk;
            var wv = 0.0;
            let oc = row0 + r;
            if (oc < p.o && gk < p.kdim) {
                wv = load_w(oc * p.kdim + gk);
            }
            ws[kk * TILE + r] = wv;
            // Patch: consecutive invocations read consecutive output pixels.
            let col = e % TILE;
            let pk = k0 + e / TILE;
            let pix = col0 + col;
            var xv = 0.0;
            if (pix < p.npix && pk < p.kdim) {
                let img = pix / plane;
                let rem = pix % plane;
                let oy = rem / p.ow;
                let ox = rem % p.ow;
                let ci = pk / kk2;
                let kr = pk % kk2;
                let iy = i32(oy * p.stride + kr / p.ks) - i32(p.pad);
                let ix = i32(ox * p.stride + kr % p.ks) - i32(p.pad);
                if (iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w)) {
                    xv = x[((img * p.c + ci) * p.h + u32(iy)) * p.w + u32(ix)];
                }
            }
            xs[(e / TILE) * TILE + col] = xv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let a = vec4<f32>(ws[kk * TILE + lid.y], ws[kk * TILE + lid.y + 16u],
                              ws[kk * TILE + lid.y + 32u], ws[kk * TILE + lid.y + 48u]);
            let b = vec4<f32>(xs[kk * TILE + lid.x], xs[kk * TILE + lid.x + 16u],
                              xs[kk * TILE + lid.x + 32u], xs[kk * TILE + lid.x + 48u]);
            acc0 += a.x * b;
            acc1 += a.y * b;
            acc2 += a.z * b;
            acc3 += a.w * b;
        }
        workgroupBarrier();
    }
    var acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        let oc = row0 + lid.y + 16u * i;
        if (oc >= p.o) {
            continue;
        }
        var b = 0.0;
        if (p.has_bias != 0u) {
            b = bias[oc];
        }
        for (var j = 0u; j < 4u; j++) {
            let pix = col0 + lid.x + 16u * j;
            if (pix < p.npix) {
                let img = pix / plane;
                let rem = pix % plane;
                y[(img * p.o + oc) * plane + rem] = acc[i][j] + b;
            }
        }
    }
}
