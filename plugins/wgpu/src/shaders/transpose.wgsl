// Batched transpose [B, R, C] -> [B, C, R] through a 16x16 workgroup tile so that both the
// reads and the writes are contiguous (used for NCHW <-> NLC).

struct Params {
    batch: u32,
    rows: u32,
    cols: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

var<workgroup> tile: array<f32, 272>; // 16 x 17: the pad column avoids bank conflicts

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let b = wg.z;
    let r0 = wg.y * 16u;
    let c0 = wg.x * 16u;
    let plane = p.rows * p.cols;
    let r = r0 + lid.y;
    let c = c0 + lid.x;
    if (r < p.rows && c < p.cols) {
        tile[lid.y * 17u + lid.x] = x[b * plane + r * p.cols + c];
    }
    workgroupBarrier();
    // Output row = input column c0 + lid.y, output column = input row r0 + lid.x.
    let oc = c0 + lid.y;
    let orow = r0 + lid.x;
    if (oc < p.cols && orow < p.rows) {
        y[b * plane + oc * p.rows + orow] = tile[lid.x * 17u + lid.y];
    }
}
