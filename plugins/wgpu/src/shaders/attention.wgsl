// Fused multi-head attention with an online softmax (flash-attention style): the Lq x Lk
// score matrix never exists. One workgroup of BQ invocations per (block of BQ queries,
// image, head); each invocation owns one query and keeps its running max, running sum and
// output accumulator in registers while blocks of BK keys and values stream through
// workgroup memory. D (head dim) and BK are substituted per pipeline by the host.
// q: [N, Lq, H*D], k, v: [N, Lk, H*D], out: [N, Lq, H*D]. A dispatch covers `lq` queries
// per image starting at query q0 (whole images, or one image's query range when q does not
// fit one binding); the offsets place its first element in the (windowed) bindings.

struct Params {
    lq: u32,
    lk: u32,
    heads: u32,
    causal: u32,
    scale: f32,
    q0: u32,
    q_off: u32,
    k_off: u32,
    v_off: u32,
    o_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> o: array<f32>;

const BQ: u32 = 64u;

var<workgroup> kt: array<f32, BK * D>;
var<workgroup> vt: array<f32, BK * D>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let img = wg.y / p.heads;
    let head = wg.y % p.heads;
    let width = p.heads * D;
    let qi = wg.x * BQ + li;
    let valid = qi < p.lq;
    // Position in the whole sequence, for the causal mask.
    let qpos = p.q0 + qi;

    var qv: array<f32, D>;
    var acc: array<f32, D>;
    var s: array<f32, BK>;
    if (valid) {
        let qbase = (img * p.lq + qi) * width + head * D + p.q_off;
        for (var d = 0u; d < D; d++) {
            qv[d] = q[qbase + d] * p.scale;
        }
    }
    var m = -3.0e38;
    var l = 0.0;

    // With a causal mask no query of this block looks past its last query.
    var kend = p.lk;
    if (p.causal != 0u) {
        kend = min(p.lk, p.q0 + (wg.x + 1u) * BQ);
    }
    for (var k0 = 0u; k0 < kend; k0 += BK) {
        for (var e = li; e < BK * D; e += BQ) {
            let j = k0 + e / D;
            var kv = 0.0;
            var vv = 0.0;
            if (j < p.lk) {
                let idx = (img * p.lk + j) * width + head * D + e % D;
                kv = k[idx + p.k_off];
                vv = v[idx + p.v_off];
            }
            kt[e] = kv;
            vt[e] = vv;
        }
        workgroupBarrier();
        var tile_max = -3.0e38;
        var seen = false;
        for (var j = 0u; j < BK; j++) {
            let kj = k0 + j;
            let visible = kj < p.lk && !(p.causal != 0u && kj > qpos);
            var sc = -3.0e38;
            if (visible) {
                sc = 0.0;
                for (var d = 0u; d < D; d++) {
                    sc += qv[d] * kt[j * D + d];
                }
                tile_max = max(tile_max, sc);
                seen = true;
            }
            s[j] = sc;
        }
        if (valid && seen) {
            let m_new = max(m, tile_max);
            let correction = exp(m - m_new);
            l *= correction;
            for (var d = 0u; d < D; d++) {
                acc[d] *= correction;
            }
            for (var j = 0u; j < BK; j++) {
                let kj = k0 + j;
                if (kj < p.lk && !(p.causal != 0u && kj > qpos)) {
                    let pj = exp(s[j] - m_new);
                    l += pj;
                    for (var d = 0u; d < D; d++) {
                        acc[d] += pj * vt[j * D + d];
                    }
                }
            }
            m = m_new;
        }
        workgroupBarrier();
    }
    if (valid) {
        let obase = (img * p.lq + qi) * width + head * D + p.o_off;
        let inv = 1.0 / l;
        for (var d = 0u; d < D; d++) {
            o[obase + d] = acc[d] * inv;
        }
    }
}
