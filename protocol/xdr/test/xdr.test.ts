// RFC 4506 primitives checked three ways over annotated hex (parse, generate, round trip),
// plus the hostile cases: short input, long lengths, non-zero padding, trailing bytes.
import test from 'ava';
import { XdrError, XdrReader, XdrWriter } from '../src/index.js';
import { hex } from './hex.js';

interface Fixture {
  name: string;
  bytes: Buffer;
  write: (w: XdrWriter) => void;
  read: (r: XdrReader) => unknown;
  value: unknown;
}

const fixtures: Fixture[] = [
  {
    name: 'uint32',
    bytes: hex('ff ff ff fe  # 4294967294'),
    write: (w) => w.uint32(0xfffffffe),
    read: (r) => r.uint32(),
    value: 0xfffffffe,
  },
  {
    name: 'int32 negative',
    bytes: hex('ff ff ff ff  # -1'),
    write: (w) => w.int32(-1),
    read: (r) => r.int32(),
    value: -1,
  },
  {
    name: 'enum',
    bytes: hex('00 00 00 02  # MSG_DENIED-like enum value 2'),
    write: (w) => w.enum(2),
    read: (r) => r.enum(),
    value: 2,
  },
  {
    name: 'bool true',
    bytes: hex('00 00 00 01'),
    write: (w) => w.bool(true),
    read: (r) => r.bool(),
    value: true,
  },
  {
    name: 'unsigned hyper (BigInt, all 64 bits)',
    bytes: hex('ff ff ff ff ff ff ff fe  # 2^64 - 2'),
    write: (w) => w.uint64(0xfffffffffffffffen),
    read: (r) => r.uint64(),
    value: 0xfffffffffffffffen,
  },
  {
    name: 'hyper negative',
    bytes: hex('ff ff ff ff ff ff ff fb  # -5'),
    write: (w) => w.int64(-5n),
    read: (r) => r.int64(),
    value: -5n,
  },
  {
    name: 'unsigned hyper as number, above 2^32',
    bytes: hex('00 00 00 01 00 00 00 02  # 2^32 + 2'),
    write: (w) => w.uint64Number(0x1_0000_0002),
    read: (r) => r.uint64Number(),
    value: 0x1_0000_0002,
  },
  {
    name: 'unsigned hyper as number, 2^53 - 1',
    bytes: hex('00 1f ff ff ff ff ff ff'),
    write: (w) => w.uint64Number(Number.MAX_SAFE_INTEGER),
    read: (r) => r.uint64Number(),
    value: Number.MAX_SAFE_INTEGER,
  },
  {
    name: 'opaque<> with 3 bytes of padding',
    bytes: hex(`
      00 00 00 05     # length 5
      68 65 6c 6c 6f  # "hello"
      00 00 00        # padding to 8`),
    write: (w) => w.opaque(Buffer.from('hello')),
    read: (r) => r.opaque(16).toString(),
    value: 'hello',
  },
  {
    name: 'opaque<> of length 0',
    bytes: hex('00 00 00 00  # length 0, no body'),
    write: (w) => w.opaque(Buffer.alloc(0)),
    read: (r) => r.opaque(0).length,
    value: 0,
  },
  {
    name: 'string<> of length 4, no padding',
    bytes: hex(`
      00 00 00 04     # length 4
      2f 61 62 63     # "/abc"`),
    write: (w) => w.string('/abc'),
    read: (r) => r.string(1024).toString(),
    value: '/abc',
  },
  {
    name: 'opaque[6] fixed',
    bytes: hex(`
      01 02 03 04 05 06  # 6 bytes
      00 00              # padding`),
    write: (w) => w.opaqueFixed(Buffer.from([1, 2, 3, 4, 5, 6])),
    read: (r) => [...r.opaqueFixed(6)],
    value: [1, 2, 3, 4, 5, 6],
  },
  {
    name: 'opaqueRef splices a buffer with padding after it',
    bytes: hex(`
      00 00 00 07                 # length 7
      61 62 63 64 65 66 67 00     # "abcdefg" + 1 byte padding
      00 00 00 2a                 # a trailing uint32 42`),
    write: (w) => w.opaqueRef(Buffer.from('abcdefg')).uint32(42),
    read: (r) => [r.opaque(7).toString(), r.uint32()],
    value: ['abcdefg', 42],
  },
];

for (const f of fixtures) {
  test(`parse: ${f.name}`, (t) => {
    const r = new XdrReader(f.bytes);
    t.deepEqual(f.read(r), f.value);
    t.notThrows(() => r.done());
  });
  test(`generate: ${f.name}`, (t) => {
    const w = new XdrWriter();
    f.write(w);
    t.deepEqual(w.toBuffer(), f.bytes);
    t.is(w.length, f.bytes.length);
  });
  test(`round trip: ${f.name}`, (t) => {
    const w = new XdrWriter(0);
    f.write(w);
    const again = new XdrWriter(4);
    f.write(again);
    t.deepEqual(Buffer.concat(w.toBuffers()), again.toBuffer());
    t.deepEqual(f.read(new XdrReader(w.toBuffer())), f.value);
  });
}

test('every read fails with XdrError on every truncation of every fixture', (t) => {
  for (const f of fixtures) {
    for (let cut = 0; cut < f.bytes.length; cut++) {
      t.throws(() => f.read(new XdrReader(f.bytes.subarray(0, cut))), { instanceOf: XdrError }, `${f.name} cut at ${cut}`);
    }
  }
});

test('reads respect a window inside a larger buffer', (t) => {
  const buf = hex('00 00 00 01  00 00 00 02  00 00 00 03');
  const r = new XdrReader(buf, 4, 8);
  t.is(r.uint32(), 2);
  t.is(r.remaining, 0);
  t.throws(() => r.uint32(), { instanceOf: XdrError });
  t.throws(() => r.reset(buf, 0, 13), { instanceOf: RangeError });
});

test('bool other than 0 or 1 is rejected', (t) => {
  t.throws(() => new XdrReader(hex('00 00 00 02')).bool(), { instanceOf: XdrError });
});

test('opaque longer than its limit is rejected before slicing', (t) => {
  t.throws(() => new XdrReader(hex('00 00 00 05 68 65 6c 6c 6f 00 00 00')).opaque(4), { instanceOf: XdrError, message: /exceeds limit/ });
  t.throws(() => new XdrReader(hex('00 00 00 11')).arrayLength(16), { instanceOf: XdrError });
  t.is(new XdrReader(hex('00 00 00 10')).arrayLength(16), 16);
});

test('a length past the end of input is rejected even when the limit allows it', (t) => {
  t.throws(() => new XdrReader(hex('00 00 00 08 61 62 63 64')).opaque(1024), { instanceOf: XdrError, message: /underflow/ });
  // Lengths at and beyond 2^31 must not wrap into a negative size that slips past the check.
  for (const len of ['7f ff ff ff', '80 00 00 00', 'ff ff ff fd', 'ff ff ff ff']) {
    const r = new XdrReader(hex(`${len} 61 62 63 64`));
    t.throws(() => r.opaque(0xffffffff), { instanceOf: XdrError }, len);
    t.true(r.offset <= 4);
  }
});

test('opaqueFixed with a nonsense length is rejected', (t) => {
  const r = new XdrReader(hex('00 00 00 00'));
  t.throws(() => r.opaqueFixed(-4), { instanceOf: XdrError });
  t.throws(() => r.opaqueFixed(2 ** 31), { instanceOf: XdrError });
  t.is(r.offset, 0);
});

test('non-zero padding is rejected', (t) => {
  t.throws(() => new XdrReader(hex('00 00 00 01 61 00 01 00')).opaque(4), { instanceOf: XdrError, message: /padding/ });
  t.throws(() => new XdrReader(hex('61 62 63 ff')).opaqueFixed(3), { instanceOf: XdrError, message: /padding/ });
});

test('done() reports trailing bytes', (t) => {
  const r = new XdrReader(hex('00 00 00 01 00 00 00 02'));
  r.uint32();
  t.throws(() => r.done(), { instanceOf: XdrError, message: /trailing/ });
  r.uint32();
  t.notThrows(() => r.done());
});

test('uint64Number saturates above 2^53 instead of losing bits silently', (t) => {
  t.is(new XdrReader(hex('00 20 00 00 00 00 00 00')).uint64Number(), Number.MAX_SAFE_INTEGER);
  t.is(new XdrReader(hex('ff ff ff ff ff ff ff ff')).uint64Number(), Number.MAX_SAFE_INTEGER);
});

test('64-bit writers wrap into range the way the wire does', (t) => {
  t.deepEqual(new XdrWriter().uint64(-1n).toBuffer(), hex('ff ff ff ff ff ff ff ff'));
  t.deepEqual(new XdrWriter().int64(2n ** 63n).toBuffer(), hex('80 00 00 00 00 00 00 00'));
  t.is(new XdrReader(new XdrWriter().int64(-(2n ** 63n)).toBuffer()).int64(), -(2n ** 63n));
});

test('reserve + patchUint32 fills a count written first', (t) => {
  const w = new XdrWriter(4);
  const at = w.reserve();
  for (let i = 0; i < 100; i++) w.uint32(i); // forces the buffer to grow under the slot
  w.patchUint32(at, 100);
  const r = new XdrReader(w.toBuffer());
  t.is(r.arrayLength(100), 100);
  for (let i = 0; i < 100; i++) t.is(r.uint32(), i);
});

test('patchUint32 across an opaqueRef is refused', (t) => {
  const w = new XdrWriter();
  const at = w.reserve();
  w.opaqueRef(Buffer.from('data'));
  t.throws(() => w.patchUint32(at, 1));
  const after = w.reserve();
  w.patchUint32(after, 9);
  t.deepEqual(w.toBuffer(), hex('00 00 00 00  00 00 00 04  64 61 74 61  00 00 00 09'));
});

test('uint32At reads back a word before and after an opaqueRef', (t) => {
  const w = new XdrWriter(8);
  w.uint32(7).uint32(8).opaqueRef(Buffer.from('abcde')).uint32(9);
  t.is(w.uint32At(0), 7);
  t.is(w.uint32At(4), 8);
  t.is(w.uint32At(8), 5); // the opaque's length
  t.is(w.uint32At(20), 9); // after 5 data bytes and 3 of padding
  t.throws(() => w.uint32At(24), { instanceOf: RangeError });
  t.throws(() => w.uint32At(-4), { instanceOf: RangeError });
  w.toBuffers();
  t.is(w.uint32At(20), 9); // flushed: still found
});

test('opaqueRef keeps the caller buffer by reference (no copy)', (t) => {
  const data = Buffer.alloc(1 << 20, 7);
  const w = new XdrWriter();
  w.uint32(1).opaqueRef(data).uint32(2);
  const chunks = w.toBuffers();
  t.true(chunks.some((c) => c === data));
  t.is(w.length, 4 + 4 + (1 << 20) + 4);
});

test('writer grows from a zero initial size', (t) => {
  const w = new XdrWriter(0);
  for (let i = 0; i < 1000; i++) w.uint32(i);
  t.is(w.length, 4000);
  t.is(new XdrReader(w.toBuffer(), 3996).uint32(), 999);
});

test('seek rewinds to a taken offset, and never leaves the window', (t) => {
  const buf = Buffer.from('ffffffff 00000002 00000003 eeeeeeee'.replace(/ /g, ''), 'hex');
  const r = new XdrReader(buf, 4, 12);
  const at = r.offset;
  t.is(r.uint32(), 2);
  r.seek(at);
  t.is(r.uint32(), 2);
  t.is(r.uint32(), 3);
  t.throws(() => r.seek(0), { instanceOf: RangeError });
  t.throws(() => r.seek(13), { instanceOf: RangeError });
  t.throws(() => r.seek(5.5), { instanceOf: RangeError });
  r.seek(12);
  t.throws(() => r.uint32(), { instanceOf: XdrError });
});
