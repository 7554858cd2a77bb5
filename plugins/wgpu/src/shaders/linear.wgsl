// y[m, n] = sum_k x[m, k] * w[n, k] + bias[n]: a tiled GEMM. Each 16x16 workgroup computes a
// 64x64 output tile; every invocation owns a 4x4 block strided by 16 so that neighbouring
// invocations touch neighbouring workgroup-memory words. `load_w` (binding 2) comes from the
// weight prelude and reads f32, f16 or f16 packed in u32.

struct Params {
    m: u32,
    n: u32,
    k: u32,
    has_bias: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const TILE: u32 = 64u;
const TK: u32 = 16u;

// [TK][TILE] each: the k-slice of the x rows and of the weight rows of this tile.
var<workgroup> xs: array<f32, 1024>;
var<workgroup> ws: array<f32, 1024>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row0 = wg.y * TILE;
    let col0 = wg.x * TILE;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    for (var k0 = 0u; k0 < p.k; k0 += TK) {
        for (var i = 0u; i < 4u; i++) {
            let e = li + i * 256u;
            let r = e / TK;
            let kk = e % TK;
            let gk = k0 + kk;
            var xv = 0.0;
            let gr = row0 + r;
            if (gr < p.m && gk < p.k) {
                xv = x[gr * p.k + gk];
            }
            xs[kk * TILE + r] = xv;
            var wv = 0.0;
            let gc = col0 + r;
            if (gc < p.n && gk < p.k) {
                wv = load_w(gc * p.k + gk);
            }
            ws[kk * TILE + r] = wv;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let a = vec4<f32>(xs[kk * TILE + lid.y], xs[kk * TILE + lid.y + 16u],
                              xs[kk * TILE + lid.y + 32u], xs[kk * TILE + lid.y + 48u]);
            let b = vec4<f32>(ws[kk * TILE + lid.x], ws[kk * TILE + lid.x + 16u],
                              ws[kk * TILE + lid.x + 32u], ws[kk * TILE + lid.x + 48u]);
            acc0 += a.x * b;
            acc1 += a.y * b;
            acc2 += a.z * b;
            acc3 += a.w * b;
        }
        workgroupBarrier();
    }
    var acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + lid.y + 16u * i;
        if (r >= p.m) {
            continue;
        }
        for (var j = 0u; j < 4u; j++) {
            let c = col0 + lid.x + 16u * j;
            if (c < p.n) {
                var v = acc[i][j];
                if (p.has_bias != 0u) {
                    v += bias[c];
                }
                y[r * p.n + c] = v;
            }
        }
    }
}
