/** Z85 (ZeroMQ RFC 32) decoding, for checking key strings. */
const ENCODER = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const DECODER = new Map<string, number>([...ENCODER].map((c, i) => [c, i]));

export function z85Decode(text: string): Uint8Array {
  if (text.length % 5 !== 0) throw new Error('Z85 text length must be a multiple of 5');
  const out = new Uint8Array((text.length / 5) * 4);
  for (let i = 0, o = 0; i < text.length; i += 5, o += 4) {
    let value = 0;
    for (let j = 0; j < 5; j++) {
      const digit = DECODER.get(text[i + j]);
      if (digit === undefined) throw new Error(`invalid Z85 character ${JSON.stringify(text[i + j])}`);
      value = value * 85 + digit;
    }
    out[o] = (value >>> 24) & 255;
    out[o + 1] = (value >>> 16) & 255;
    out[o + 2] = (value >>> 8) & 255;
    out[o + 3] = value & 255;
  }
  return out;
}
