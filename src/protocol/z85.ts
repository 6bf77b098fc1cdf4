/** Z85 (ZeroMQ RFC 32): CURVE keys as text. */
const ENCODER = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
/** Z85-encode a 32-byte key (RFC 32) so it compares with zeromq's Z85 key strings. */
export function z85Encode32(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 4) {
    let value = ((bytes[i] << 24) >>> 0) + (bytes[i + 1] << 16) + (bytes[i + 2] << 8) + bytes[i + 3];
    const chunk: string[] = [];
    for (let j = 0; j < 5; j++) {
      chunk.unshift(ENCODER[value % 85]);
      value = Math.floor(value / 85);
    }
    out += chunk.join('');
  }
  return out;
}

