// The sum of one f32 from each invocation of a workgroup of WG = ROWS * ROWS, returned to
// all of them; prepended to the norm kernels (the host substitutes ROWS: 16 on GPUs, 8 on
// software adapters). Two levels of ROWS instead of a tree of halvings: three barriers per
// sum instead of up to ten, which software adapters run by switching between all of the
// workgroup's invocations; on a GPU the few extra adds cost nothing.

const WG: u32 = ROWS * ROWS;
var<workgroup> red: array<f32, WG>;
var<workgroup> red_rows: array<f32, ROWS>;

fn workgroup_sum(li: u32, v: f32) -> f32 {
    red[li] = v;
    workgroupBarrier();
    if (li < ROWS) {
        var s = 0.0;
        for (var i = 0u; i < ROWS; i++) {
            s += red[li * ROWS + i];
        }
        red_rows[li] = s;
    }
    workgroupBarrier();
    var total = 0.0;
    for (var i = 0u; i < ROWS; i++) {
        total += red_rows[i];
    }
    // Nobody writes `red_rows` for the next sum before everybody has read this one.
    workgroupBarrier();
    return total;
}
