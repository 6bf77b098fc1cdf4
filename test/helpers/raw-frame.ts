/**
 * msgpack of any value, for tests and fuzzers that must send what the wire types forbid (a misspelt kind, a
 * field of the wrong type). Production code uses `encode` from src/protocol/codec.ts, which takes only a
 * declared message. Same msgpack options, so a well-formed value encodes to the same bytes.
 */
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false, moreTypes: false, mapsAsObjects: true });

export function encodeRaw(value: unknown): Buffer {
  return packr.pack(value);
}
