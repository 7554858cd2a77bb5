// Batched transpose [B, R, C] -> [B, C, R] through a 16x16 workgroup tile so that both the
// reads and the writes are contiguous (used for NCHW <-> NLC). A dispatch covers the block
// of matrices b0.., rows r0..r_end and columns c0..c_end; `x_base`/`y_base` are the
// elements the (possibly windowed) bindings begin at.

struct Params {
    rows: u32,
    cols: u32,
    b0: u32,
    r0: u32,
    c0: u32,
    r_end: u32,
    c_end: u32,
    x_base: u32,
    y_base: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

var<workgroup> tile: array<f32, 272>; // 16 x 17: the pad column avoids bank conflicts

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let b = p.b0 + wg.z;
    let r0 = p.r0 + wg.y * 16u;
    let c0 = p.c0 + wg.x * 16u;
    let plane = p.rows * p.cols;
    let r = r0 + lid.y;
    let c = c0 + lid.x;
    if (r < p.r_end && c < p.c_end) {
        tile[lid.y * 17u + lid.x] = x[b * plane + r * p.cols + c - p.x_base];
    }
    workgroupBarrier();
    // Output row = input column c0 + lid.y, output column = input row r0 + lid.x.
    let oc = c0 + lid.y;
    let orow = r0 + lid.x;
    if (oc < p.c_end && orow < p.r_end) {
        y[b * plane + oc * p.rows + orow - p.y_base] = tile[lid.x * 17u + lid.y];
    }
}
