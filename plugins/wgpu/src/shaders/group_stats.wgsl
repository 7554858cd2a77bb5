// Statistics of one segment of a group-norm group, for groups larger than one storage
// binding: count, mean and the sum of squared deviations from that mean (M2), written as
// three words at `slot`. One workgroup; the segment is x[x_off .. x_off + count].

struct Params {
    count: u32,
    x_off: u32,
    slot: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) li: u32) {
    var sum = 0.0;
    for (var i = li; i < p.count; i += WG) {
        sum += x[p.x_off + i];
    }
    let mean = workgroup_sum(li, sum) / f32(p.count);
    var sq = 0.0;
    for (var i = li; i < p.count; i += WG) {
        let d = x[p.x_off + i] - mean;
        sq += d * d;
    }
    let m2 = workgroup_sum(li, sq);
    if (li == 0u) {
        stats[3u * p.slot] = bitcast<f32>(p.count);
        stats[3u * p.slot + 1u] = mean;
        stats[3u * p.slot + 2u] = m2;
    }
}
