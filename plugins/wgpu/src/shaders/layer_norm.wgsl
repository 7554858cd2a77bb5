// Layer norm over the last dim of x: [rows, C] with affine. One workgroup per row (rows
// spread over a 2-D grid); mean, then variance around the mean, then the write. `x_off`/
// `y_off` place this dispatch's rows in windowed bindings.

struct Params {
    rows: u32,
    c: u32,
    eps: f32,
    x_off: u32,
    y_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row = wg.y * nwg.x + wg.x;
    // Uniform per workgroup, so the barriers below stay in uniform control flow.
    if (row >= p.rows) {
        return;
    }
    let base = row * p.c + p.x_off;
    let out = row * p.c + p.y_off;
    var sum = 0.0;
    for (var i = li; i < p.c; i += WG) {
        sum += x[base + i];
    }
    let mean = workgroup_sum(li, sum) / f32(p.c);
    var sq = 0.0;
    for (var i = li; i < p.c; i += WG) {
        let d = x[base + i] - mean;
        sq += d * d;
    }
    let rstd = inverseSqrt(workgroup_sum(li, sq) / f32(p.c) + p.eps);
    for (var i = li; i < p.c; i += WG) {
        y[out + i] = (x[base + i] - mean) * rstd * gamma[i] + beta[i];
    }
}
