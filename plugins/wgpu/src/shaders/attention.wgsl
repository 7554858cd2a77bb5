// Fused multi-head attention with an online softmax (flash-attention style) for any head
// dim: the Lq x Lk score matrix never exists, and no invocation holds a whole query or
// output row, so D = 40 (SD's UNet) and D = 512 (the VAE's single head) run the same code.
//
// One workgroup of BQ x 8 invocations per (block of BQ queries, image, head), laid out as
// BQ rows x 8 lanes: invocation (r, lane) owns query r of the block. The host substitutes
// BQ: 32 on GPUs, 8 on software adapters (where every invocation of a workgroup costs a
// switch at each barrier). Keys and values
// stream through in blocks of BK = 64. Per key block:
//   1. scores: the 32 x 64 tile Q K^T, accumulated over chunks of TD head-dim columns staged
//      in workgroup memory; invocation (r, lane) computes keys lane, lane + 8, ...
//   2. online softmax: the row max is combined across the row's 8 lanes, the running
//      output is rescaled, and the probabilities go to workgroup memory.
//   3. output: P V, with the value rows staged in the same TD-column chunks; invocation
//      (r, lane) accumulates head-dim columns lane, lane + 8, ... of its query.
// Each lane keeps a partial softmax denominator over its own keys; the 8 partials of a row
// are summed once at the end. Workgroup memory: 15.4 KiB, under WebGPU's 16 KiB.
// D (head dim) and TD (chunk width, a multiple of 8) are substituted by the host, which
// also writes out the two innermost products at the `@` markers: lavapipe (llvmpipe) stops
// any loop after 65535 iterations in total per workgroup, which nested loops over keys
// and head-dim chunks would reach at 1024 keys x 512 channels; unrolled, the loops left
// run at most (keys / 64) x (D / TD) x 4 times (32768 for the VAE at 1024x1024).
// q: [N, Lq, H*D], k, v: [N, Lk, H*D], out: [N, Lq, H*D]. A dispatch covers `lq` queries
// per image starting at query q0 (whole images, or one image's query range when q does not
// fit one binding) of the images from img0 on; the offsets place its first element in the
// (windowed) bindings.
// The host prepends one of two variants' declarations: the output binding and
// `add_score_bias`, which adds nothing to the scaled scores (`attention_no_bias.wgsl`, the
// SD networks) or Swin's relative position bias and shifted-window mask
// (`attention_window_bias.wgsl`, SwinIR), bound as two more inputs before the output.

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
    img0: u32,
    windows: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;

const BK: u32 = 64u;
const LANES: u32 = 8u;
const THREADS: u32 = BQ * LANES;
// Head-dim chunks, and accumulators per invocation (head-dim columns lane + 8 i).
const NCH: u32 = (D + TD - 1u) / TD;
const PER_CHUNK: u32 = TD / LANES;
const NACC: u32 = NCH * PER_CHUNK;
// Row strides padded so that the lanes of a row, and the rows of a warp, hit distinct banks.
const QS: u32 = TD + 1u;
const KS: u32 = TD + 1u;
const PS: u32 = BK + 8u;
const NEG: f32 = -3.0e38;

// Query chunk [BQ][TD] (also the row-max and denominator exchange, THREADS words).
var<workgroup> qt: array<f32, BQ * QS>;
// Key chunk [BK][TD] in step 1, value chunk in step 3.
var<workgroup> kv: array<f32, BK * KS>;
// Probabilities [BQ][BK].
var<workgroup> pt: array<f32, BQ * PS>;

fn visible(kj: u32, qpos: u32) -> bool {
    return kj < p.lk && !(p.causal != 0u && kj > qpos);
}

@compute @workgroup_size(THREADS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let img = wg.y / p.heads;
    let head = wg.y % p.heads;
    let width = p.heads * D;
    let r = li / LANES;
    let lane = li % LANES;
    let q_first = wg.x * BQ;
    let qi = q_first + r;
    // Position in the whole sequence, for the causal mask.
    let qpos = p.q0 + qi;
    let q_base = img * p.lq * width + head * D + p.q_off;
    let k_base = img * p.lk * width + head * D;

    var acc: array<f32, NACC>;
    var m = NEG;
    var l = 0.0;

    // With a causal mask no query of this block looks past its last query.
    var kend = p.lk;
    if (p.causal != 0u) {
        kend = min(p.lk, p.q0 + q_first + BQ);
    }
    for (var k0 = 0u; k0 < kend; k0 += BK) {
        let nk = min(BK, p.lk - k0);
        // 1. Scores of keys lane + 8 jj (zeroed explicitly: a declaration inside a loop
        // is not re-initialised on every pass by every compiler).
        var s: array<f32, BK / LANES>;
        for (var jj = 0u; jj < BK / LANES; jj++) {
            s[jj] = 0.0;
        }
        for (var c = 0u; c < NCH; c++) {
            let d0 = c * TD;
            for (var e = li; e < BQ * TD; e += THREADS) {
                let row = e / TD;
                let d = d0 + e % TD;
                var val = 0.0;
                if (q_first + row < p.lq && d < D) {
                    val = q[q_base + (q_first + row) * width + d];
                }
                qt[row * QS + e % TD] = val;
            }
            for (var e = li; e < BK * TD; e += THREADS) {
                let j = e / TD;
                let d = d0 + e % TD;
                var val = 0.0;
                if (j < nk && d < D) {
                    val = k[k_base + (k0 + j) * width + d + p.k_off];
                }
                kv[j * KS + e % TD] = val;
            }
            workgroupBarrier();
            // s[jj] += qt[r][dd] * kv[lane + 8 jj][dd] for every dd < TD, jj < 8.
            // @scores
            workgroupBarrier();
        }
        // 2. Online softmax: the block's row max over the row's lanes.
        var tile_max = NEG;
        for (var jj = 0u; jj < BK / LANES; jj++) {
            let kj = k0 + lane + LANES * jj;
            s[jj] *= p.scale;
            if (visible(kj, qpos)) {
                s[jj] = add_score_bias(s[jj], img, head, qi, kj);
                tile_max = max(tile_max, s[jj]);
            }
        }
        qt[li] = tile_max;
        workgroupBarrier();
        var row_max = NEG;
        for (var t = 0u; t < LANES; t++) {
            row_max = max(row_max, qt[r * LANES + t]);
        }
        let m_new = max(m, row_max);
        // Clamped: m starts at -3e38, and some drivers' exp misbehaves far below -88.
        let correction = exp(max(m - m_new, -100.0));
        l *= correction;
        for (var jj = 0u; jj < BK / LANES; jj++) {
            let j = lane + LANES * jj;
            var pj = 0.0;
            if (visible(k0 + j, qpos)) {
                pj = exp(s[jj] - m_new);
            }
            l += pj;
            pt[r * PS + j] = pj;
        }
        m = m_new;
        for (var i = 0u; i < NACC; i++) {
            acc[i] *= correction;
        }
        // 3. Output columns lane + 8 i += P V.
        for (var c = 0u; c < NCH; c++) {
            let d0 = c * TD;
            // The barrier also orders the probabilities (first chunk) and the row-max
            // exchange in `qt` against the next key block's query chunk.
            workgroupBarrier();
            for (var e = li; e < BK * TD; e += THREADS) {
                let j = e / TD;
                let d = d0 + e % TD;
                var val = 0.0;
                if (j < nk && d < D) {
                    val = v[k_base + (k0 + j) * width + d + p.v_off];
                }
                kv[j * KS + e % TD] = val;
            }
            workgroupBarrier();
            // acc[c * PER_CHUNK + i] += sum over j < BK of pt[r][j] * kv[j][lane + 8 i]
            // (keys past the end have probability 0 and zero values).
            // @accumulate
        }
        workgroupBarrier();
    }
    // The softmax denominator: the sum of the row's 8 lane partials.
    qt[li] = l;
    workgroupBarrier();
    var total = 0.0;
    for (var t = 0u; t < LANES; t++) {
        total += qt[r * LANES + t];
    }
    if (qi < p.lq) {
        let o_base = (img * p.lq + qi) * width + head * D + p.o_off;
        let inv = 1.0 / total;
        for (var i = 0u; i < NACC; i++) {
            let d = lane + LANES * i;
            if (d < D) {
                o[o_base + d] = acc[i] * inv;
            }
        }
    }
}
