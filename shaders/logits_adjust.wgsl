// logits_adjust.wgsl — a request's per-token logit adjustments, in place, before sampling.
//
// Job: for each entry (one per distinct token id; ids never repeat, so no two invocations
// write the same logit), in this order (src/reference/sample.ts adjustLogitsCpu is the twin):
//   l += bias                                     (logit_bias)
//   if count > 0: l -= frequency * count + presence  (OpenAI's frequency/presence penalties;
//                                                  count = times the token was generated)
//   if seen and repetition != 1: l = l < 0 ? l * repetition : l / repetition
//                                                 (CTRL / transformers' repetition penalty;
//                                                  seen = in the prompt or generated)
//
// Layout (bind group 0):
//   @binding(0) uniform Params, 32 bytes: [0] n u32 (entries), [1] logitsOffset u32 (f32
//       elements), [2] frequency f32, [3] presence f32, [4] repetition f32, [5..7] unused
//   @binding(1) storage read        entries: array<vec4<u32>>  (id, count, flags: bit 0 = seen,
//       bias as f32 bits)
//   @binding(2) storage read_write  logits: array<f32>
// Dispatch: ceil(n / WG) workgroups (folded into x, y), one invocation per entry.
struct Params { n: u32, logitsOffset: u32, frequency: f32, presence: f32, repetition: f32, _p0: u32, _p1: u32, _p2: u32 }
override WG: u32 = 64;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> entries: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> logits: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.n) { return; }
  let e = entries[i];
  let at = p.logitsOffset + e.x;
  var l = logits[at] + bitcast<f32>(e.w);
  if (e.y > 0u) { l = l - (p.frequency * f32(e.y) + p.presence); }
  if ((e.z & 1u) != 0u && p.repetition != 1.0) { l = select(l / p.repetition, l * p.repetition, l < 0.0); }
  logits[at] = l;
}
