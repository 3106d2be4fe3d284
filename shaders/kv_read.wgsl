// Reads of the paged KV cache, shared by the attention kernels: src/kernels/attention.ts puts
// this text in front of each of them. loadK / loadV return vec4 j of kCache / vCache, which the
// kernel declares as array<vec4<u32>>: f32 words, or (KV_F16) four halves in the words 2j and
// 2j + 1, as kv_write.wgsl packs them.
override KV_F16: bool = false;

fn kvHalf(w: vec4<u32>, j: u32) -> vec4<f32> {
  let h = select(w.xy, w.zw, (j & 1u) == 1u);
  return vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y));
}
fn loadK(j: u32) -> vec4<f32> {
  if (KV_F16) { return kvHalf(kCache[j >> 1u], j); }
  return bitcast<vec4<f32>>(kCache[j]);
}
fn loadV(j: u32) -> vec4<f32> {
  if (KV_F16) { return kvHalf(vCache[j >> 1u], j); }
  return bitcast<vec4<f32>>(vCache[j]);
}
