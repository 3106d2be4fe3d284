// embed_q4: gathers embedding rows from an int4 table, dequantized on the fly (the table is never held as f32).
// out[r, c] = dequant(table)[ids[r] - idBase, c] * scale  for ids in [idBase, idBase + idCount); other rows untouched
// (a table split into row parts runs one dispatch per part, as embed.wgsl).
// Layout: ids u32 [rows]; table u32 packed by src/core/quant.ts: row n's nibbles at words [n*RW, (n+1)*RW),
// RW = 4*ceil(hidden/32), element c in word c/8 at bits 4(c % 8); f32 scales [idCount, G] at scalesOffset; offsets
// likewise at minsOffset (0: symmetric, w = (q - 8) s, one rounding: the value MLC's (q - 7) s gives for its nibbles
// stored + 1); asymmetric w = q s + m. out f32 [rows, hidden]. Dispatch: ceil(rows * hidden / WG) (folded into x, y).
struct Params { rows: u32, hidden: u32, scale: f32, idBase: u32, idCount: u32, scalesOffset: u32, minsOffset: u32, _pad: u32 }
override WG: u32 = 256;
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> table: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= p.rows * p.hidden) { return; }
  let r = i / p.hidden;
  let c = i % p.hidden;
  let id = ids[r];
  if (id < p.idBase || id - p.idBase >= p.idCount) { return; }
  let n = id - p.idBase;
  let G = (p.hidden + 31u) / 32u;
  let q = (table[n * G * 4u + c / 8u] >> (4u * (c % 8u))) & 0xFu;
  let s = bitcast<f32>(table[p.scalesOffset + n * G + c / 32u]);
  var w: f32;
  if (p.minsOffset == 0u) { w = f32(i32(q) - 8) * s; } else { w = fma(f32(q), s, bitcast<f32>(table[p.minsOffset + n * G + c / 32u])); }
  out[i] = w * p.scale;
}
