// Builds safetensors bytes by hand, valid or not, for tests of the reader.

/** 8-byte length + header (an object, a JSON string or raw bytes) + `data` zero bytes. */
export function rawSafetensors(
  header: object | string | Uint8Array,
  options: { length?: bigint; data?: number } = {},
): Uint8Array {
  const json = header instanceof Uint8Array ? header : new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + (options.data ?? 8));
  new DataView(out.buffer).setBigUint64(0, options.length ?? BigInt(json.length), true);
  out.set(json, 8);
  return out;
}
