import { createHash, type Hash } from 'node:crypto';

/** Castagnoli polynomial, reflected: the CRC Cloud Storage reports as `crc32c` (not zlib's CRC-32). */
const CASTAGNOLI_REFLECTED = 0x82f63b78;

/**
 * Slice-by-8 lookup tables: table 0 is the classic byte table, table k advances a byte
 * that sits k positions further back. Built on demand by {@link createCrc32cTables}.
 */
export type Crc32cTables = readonly Uint32Array[];

/** Builds the eight 256-entry tables that {@link crc32cUpdate} needs. */
export function createCrc32cTables(): Crc32cTables {
  const tables: Uint32Array[] = [];
  const first = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ CASTAGNOLI_REFLECTED : c >>> 1;
    first[n] = c >>> 0;
  }
  tables.push(first);
  for (let t = 1; t < 8; t++) {
    const previous = tables[t - 1]!;
    const next = new Uint32Array(256);
    for (let n = 0; n < 256; n++) next[n] = (previous[n]! >>> 8) ^ first[previous[n]! & 0xff]!;
    tables.push(next);
  }
  return tables;
}

/**
 * Continues a CRC32C over `data`. `crc` is the running value as returned by a previous call
 * (0 to start); the result is the finished CRC of everything so far, so calls chain freely.
 */
export function crc32cUpdate(tables: Crc32cTables, crc: number, data: Uint8Array): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = tables as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
  ];
  let c = ~crc >>> 0;
  let i = 0;
  const end8 = data.length - (data.length % 8);
  while (i < end8) {
    const lo = (c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    c =
      t7[lo & 0xff]! ^
      t6[(lo >>> 8) & 0xff]! ^
      t5[(lo >>> 16) & 0xff]! ^
      t4[lo >>> 24]! ^
      t3[data[i + 4]!]! ^
      t2[data[i + 5]!]! ^
      t1[data[i + 6]!]! ^
      t0[data[i + 7]!]!;
    i += 8;
  }
  for (; i < data.length; i++) c = t0[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** A CRC32C as Cloud Storage writes it: base64 of the big-endian 4 bytes. */
export function crc32cToBase64(crc: number): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(crc >>> 0, 0);
  return bytes.toString('base64');
}

/** The two digests an object resource carries, in the resource's encoding (base64). */
export interface ObjectHashes {
  md5Hash: string;
  crc32c: string;
}

/**
 * Incremental md5 + crc32c over an object's bytes as they stream past; a resumable upload
 * keeps one alive across its chunk requests.
 */
export class ObjectHasher {
  #md5: Hash = createHash('md5');
  #crc = 0;
  #size = 0;
  readonly #tables: Crc32cTables;

  constructor(tables: Crc32cTables) {
    this.#tables = tables;
  }

  /** Bytes hashed so far. */
  get size(): number {
    return this.#size;
  }

  update(chunk: Uint8Array): void {
    this.#md5.update(chunk);
    this.#crc = crc32cUpdate(this.#tables, this.#crc, chunk);
    this.#size += chunk.length;
  }

  /** An independent hasher in the same state: hashing on in one leaves the other where it was. */
  clone(): ObjectHasher {
    const copy = new ObjectHasher(this.#tables);
    copy.#md5 = this.#md5.copy();
    copy.#crc = this.#crc;
    copy.#size = this.#size;
    return copy;
  }

  /** Digests of everything so far; the hasher stays usable. */
  digest(): ObjectHashes {
    return { md5Hash: this.#md5.copy().digest('base64'), crc32c: crc32cToBase64(this.#crc) };
  }
}
