// Group norm of x: [N, C, S] (S = H*W) with per-channel affine, optionally followed by SiLU.
// One workgroup per (image, group): a group's channels are one contiguous run of
// (C / groups) * S values. Mean first, then the variance around it (two passes: more exact
// than E[x^2] - E[x]^2 in f32), then the normalised write. A dispatch covers (image, group)
// pairs first.. (one per workgroup); `x_base`/`y_base` are the elements the (possibly
// windowed) bindings begin at.

struct Params {
    c: u32,
    s: u32,
    groups: u32,
    eps: f32,
    silu: u32,
    first: u32,
    x_base: u32,
    y_base: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let pair = p.first + wg.x;
    let img = pair / p.groups;
    let g = pair % p.groups;
    let per_group = p.c / p.groups;
    let count = per_group * p.s;
    let global = (img * p.c + g * per_group) * p.s;
    let base = global - p.x_base;
    let out = global - p.y_base;
    var sum = 0.0;
    for (var i = li; i < count; i += WG) {
        sum += x[base + i];
    }
    let mean = workgroup_sum(li, sum) / f32(count);
    var sq = 0.0;
    for (var i = li; i < count; i += WG) {
        let d = x[base + i] - mean;
        sq += d * d;
    }
    let rstd = inverseSqrt(workgroup_sum(li, sq) / f32(count) + p.eps);
    for (var i = li; i < count; i += WG) {
        let ch = g * per_group + i / p.s;
        var v = (x[base + i] - mean) * rstd * gamma[ch] + beta[ch];
        if (p.silu != 0u) {
            v = v / (1.0 + exp(-v));
        }
        y[out + i] = v;
    }
}
