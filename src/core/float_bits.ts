// Scalar conversions between f32 and the 16-bit float formats weights arrive in (IEEE half,
// bfloat16): used by the safetensors and MLC readers, the f16 storage packing and the kernels'
// probes, so they sit in the lowest layer.
const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export function floatToBf16(x: number): number {
  f32Scratch[0] = x;
  const u = u32Scratch[0];
  return ((u + 0x7fff + ((u >> 16) & 1)) >>> 16) & 0xffff; // round to nearest even
}

/** f32 -> IEEE half bits, round to nearest even (overflow to ±inf, NaN kept NaN, subnormals rounded too). */
export function floatToHalf(x: number): number {
  f32Scratch[0] = x;
  const u = u32Scratch[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let m = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  let h: number, rest: number, half: number;
  if (e <= 0) {
    // Subnormal half: the value is (m | 2^23) * 2^(e - 14) units of 2^-24.
    if (e < -10) return sign;
    m |= 0x800000;
    const shift = 14 - e;
    h = m >>> shift;
    rest = m & ((1 << shift) - 1);
    half = 1 << (shift - 1);
  } else {
    h = (e << 10) | (m >>> 13);
    rest = m & 0x1fff;
    half = 0x1000;
  }
  // A carry out of the mantissa bumps the exponent (up to inf): still the right rounding.
  if (rest > half || (rest === half && (h & 1))) h++;
  return sign | h;
}
