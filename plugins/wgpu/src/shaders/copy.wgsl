// Strided block copy: dst[o * dst_stride + dst_off + r] = src[o * src_stride + src_off + r]
// for o < rows, r < row_len. Concat writes each input into its slot of the output; narrow
// reads a slot out of its input. A dispatch covers items first..first+n (item = o * row_len
// + r); `src_base`/`dst_base` are the elements the (possibly windowed) bindings begin at.

struct Params {
    n: u32,
    row_len: u32,
    src_stride: u32,
    src_off: u32,
    dst_stride: u32,
    dst_off: u32,
    first: u32,
    src_base: u32,
    dst_base: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * nwg.x + wg.x) * 256u + li;
    if (i >= p.n) {
        return;
    }
    let g = p.first + i;
    let o = g / p.row_len;
    let r = g % p.row_len;
    dst[o * p.dst_stride + p.dst_off + r - p.dst_base] =
        src[o * p.src_stride + p.src_off + r - p.src_base];
}
