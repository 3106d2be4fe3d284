// attention_softmax: turns the scores of the Q·Kᵀ GEMM into probabilities, in place.
// S: [heads, rows, keysPad] f32 (head-major rows, as the batched GEMM writes them). Row (h, r) is
// the query at position startPos + r; column c is key k0 + c. A key is valid when c < keys and,
// with causal = 1, key <= pos, or key < keyEnd[keyEndOffset + r] when hasKeyEnd (bidirectional spans such as an
// image's tokens), and, with window > 0, key + window > pos. Valid entries become
// softmax(scale * s); all others, up to keysPad, become 0 (P·V reads whole rows, and with the
// causal band skipped blocks of S were never written).
// Dispatch: one invocation per row, ceil(heads*rows / WG) workgroups folded into (x, y).
struct Params { rows: u32, heads: u32, keys: u32, keysPad: u32, startPos: u32, k0: u32, window: u32, causal: u32, hasKeyEnd: u32, scale: f32, keyEndOffset: u32, _p1: u32 }
override WG: u32 = 64;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> keyEnd: array<u32>;
@group(0) @binding(2) var<storage, read_write> S: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.heads * p.rows) { return; }
  let r = i % p.rows;
  let pos = p.startPos + r;
  // Valid columns are [lo, hi): the window bounds from below, causality (or the span) from above.
  var hi = p.keys;
  if (p.causal != 0u) {
    var end = pos + 1u;
    if (p.hasKeyEnd != 0u) { end = max(end, keyEnd[p.keyEndOffset + r]); }
    hi = min(hi, select(0u, end - p.k0, end > p.k0));
  }
  var lo = 0u;
  if (p.window > 0u && pos + 1u > p.window + p.k0) { lo = pos + 1u - p.window - p.k0; }
  let base = i * p.keysPad;
  var m = -3.0e38;
  for (var c = lo; c < hi; c++) { m = max(m, S[base + c] * p.scale); }
  var sum = 0.0;
  for (var c = lo; c < hi; c++) {
    let e = exp(S[base + c] * p.scale - m);
    S[base + c] = e;
    sum += e;
  }
  let inv = select(0.0, 1.0 / sum, sum > 0.0);
  for (var c = 0u; c < p.keysPad; c++) {
    if (c >= lo && c < hi) { S[base + c] *= inv; } else { S[base + c] = 0.0; }
  }
}
