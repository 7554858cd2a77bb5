// The normalising pass of group norm for groups larger than one storage binding: combines
// the group's segment statistics (group_stats.wgsl; Chan et al.'s pairwise update, exact
// as the two-pass mean and variance of one segment) and writes elements first..first+n of
// the group, optionally followed by SiLU. `affine` holds gamma then beta.

struct Params {
    c: u32,
    s: u32,
    groups: u32,
    eps: f32,
    silu: u32,
    group: u32,
    seg0: u32,
    nseg: u32,
    first: u32,
    n: u32,
    x_off: u32,
    y_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> affine: array<f32>;
@group(0) @binding(3) var<storage, read> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i >= p.n) {
        return;
    }
    var count = 0.0;
    var mean = 0.0;
    var m2 = 0.0;
    for (var k = 0u; k < p.nseg; k++) {
        let slot = 3u * (p.seg0 + k);
        let nb = f32(bitcast<u32>(stats[slot]));
        let mb = stats[slot + 1u];
        let total = count + nb;
        let delta = mb - mean;
        mean += delta * nb / total;
        m2 += stats[slot + 2u] + delta * delta * count * nb / total;
        count = total;
    }
    let rstd = inverseSqrt(m2 / count + p.eps);
    let per_group = p.c / p.groups;
    let ch = p.group * per_group + (p.first + i) / p.s;
    var v = (x[i + p.x_off] - mean) * rstd * affine[ch] + affine[p.c + ch];
    if (p.silu != 0u) {
        v = v / (1.0 + exp(-v));
    }
    y[i + p.y_off] = v;
}
