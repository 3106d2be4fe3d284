// attention_softmax: turns the scores of the Q·Kᵀ GEMM into probabilities, in place.
// S: [heads, rows, keysPad] f32 (head-major rows, as the batched GEMM writes them). Row (h, r) is
// the query at position startPos + r; column c is key k0 + c. A key is valid when c < keys and,
// with causal = 1, key <= pos, or key < keyEnd[keyEndOffset + r] when hasKeyEnd (bidirectional spans such as an
// image's tokens), and, with window > 0, key + window > pos. Valid entries become
// softmax(scale * s); all others, up to keysPad, become 0 (P·V reads whole rows, and with the
// causal band skipped blocks of S were never written).
// Dispatch: one invocation per row (vec4 passes; keysPad % 4 == 0), ceil(heads*rows / WG) workgroups folded into (x, y).
struct Params { rows: u32, heads: u32, keys: u32, keysPad: u32, startPos: u32, k0: u32, window: u32, causal: u32, hasKeyEnd: u32, scale: f32, keyEndOffset: u32, _p1: u32 }
override WG: u32 = 64;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> keyEnd: array<u32>;
@group(0) @binding(2) var<storage, read_write> S: array<vec4<f32>>;

fn valid(c4: u32, lo: u32, hi: u32) -> vec4<bool> {
  let c = vec4<u32>(c4 * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
  return (c >= vec4<u32>(lo)) & (c < vec4<u32>(hi));
}

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
  // vec4 passes over the row (keysPad % 4 == 0): masked lanes count as -inf / 0.
  let base = i * p.keysPad / 4u;
  let c4lo = lo / 4u;
  let c4hi = (hi + 3u) / 4u;
  var m = vec4<f32>(-3.0e38);
  for (var c4 = c4lo; c4 < c4hi; c4++) {
    m = max(m, select(vec4<f32>(-3.0e38), S[base + c4] * p.scale, valid(c4, lo, hi)));
  }
  let mx = max(max(m.x, m.y), max(m.z, m.w));
  var sum = vec4<f32>(0.0);
  for (var c4 = c4lo; c4 < c4hi; c4++) {
    let e = select(vec4<f32>(0.0), exp(S[base + c4] * p.scale - mx), valid(c4, lo, hi));
    S[base + c4] = e;
    sum += e;
  }
  let total = sum.x + sum.y + sum.z + sum.w;
  let inv = select(0.0, 1.0 / total, total > 0.0);
  for (var c4 = 0u; c4 < p.keysPad / 4u; c4++) {
    S[base + c4] = select(vec4<f32>(0.0), S[base + c4] * inv, c4 >= c4lo && c4 < c4hi);
  }
}
