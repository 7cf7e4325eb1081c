/**
 * CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), the checksum of zip
 * and PNG. node:zlib only exports crc32 from Node 22 and we support Node 20.
 * A CRC rather than a cheaper sum because it catches every burst error up to
 * 32 bits, which is what a torn sector or a run of NUL bytes looks like.
 */
const TABLE = ((): Uint32Array => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 of `bytes`; pass the previous result as `crc` to continue over several chunks. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = (TABLE[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}
