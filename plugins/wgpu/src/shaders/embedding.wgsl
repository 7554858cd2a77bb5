// Embedding gather: out[first + r, c] = table[ids[first + r], c] for r < count. The table
// (binding 1, `load_w` from the weight prelude) may be bound as a window starting at element
// `base` when the whole table exceeds the adapter's storage binding size.

struct Params {
    first: u32,
    count: u32,
    width: u32,
    base: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> ids: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i >= p.count * p.width) {
        return;
    }
    let row = p.first + i / p.width;
    let c = i % p.width;
    y[row * p.width + c] = load_w(ids[row] * p.width + c - p.base);
}
