// y[m, n] = sum_k x[m, k] * w[n, k] + bias[n]: a tiled GEMM. A workgroup of WX x WY
// invocations computes a TM x TN output tile (TM = WY * RM rows of x, TN = WX * RN weight
// rows); every invocation owns an RM x RN block strided by WY and WX so that neighbouring
// invocations touch neighbouring workgroup-memory words. The host picks the tile shape per
// call (WX, WY, RM, RN and the k-slice TK are substituted): square 64x64 tiles for large
// products, narrow ones where M or N is tiny (the time embedding's two rows). `load_w`
// (binding 2) comes from the weight prelude and reads f32, f16 or f16 packed in u32. The
// offsets place this dispatch's rows in windowed bindings (rows of x and y, all of w).
// The host writes the RM x RN accumulators out as scalars at the `@` markers: private
// arrays indexed in loops stay in memory on some drivers (llvmpipe).

struct Params {
    m: u32,
    n: u32,
    k: u32,
    has_bias: u32,
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

// [TK][TM] and [TK][TN]: the k-slice of this tile's x rows and weight rows.
var<workgroup> xs: array<f32, TK * TM>;
var<workgroup> ws: array<f32, TK * TN>;

@compute @workgroup_size(WX, WY)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row0 = wg.y * TM;
    let col0 = wg.x * TN;
    // @accumulators
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        // Consecutive invocations read consecutive k of one row.
        for (var e = li; e < TK * TM; e += THREADS) {
            let r = e / TK;
            let kk = e % TK;
            let gk = k0 + kk;
            let gr = row0 + r;
            var xv = 0.0;
            if (gr < p.m && gk < p.k) {
                xv = x[gr * p.k + gk + p.x_off];
            }
            xs[kk * TM + r] = xv;
        }
        for (var e = li; e < TK * TN; e += THREADS) {
            let c = e / TK;
            let kk = e % TK;
            let gk = k0 + kk;
            let gc = col0 + c;
            var wv = 0.0;
            if (gc < p.n && gk < p.k) {
                wv = load_w(gc * p.k + gk + p.w_off);
            }
            ws[kk * TN + c] = wv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            // @multiply_accumulate
        }
        workgroupBarrier();
    }
    // @store
}

fn store(r: u32, c: u32, acc: f32) {
    if (r < p.m && c < p.n) {
        var v = acc;
        if (p.has_bias != 0u) {
            v += bias[c];
        }
        y[r * p.n + c + p.y_off] = v;
    }
}
