// Record marking split at every byte offset, multi-fragment records, and caps enforced on the header.
import test from 'ava';
import { DEFAULT_MAX_RECORD, encodeRecordMark, RecordDecoder, RecordMarkError } from '../../src/rpc/record-marking.js';
import { hex } from '../fixtures/hex.js';

function decodeAll(input: Buffer[], max?: number): Buffer[] {
  const out: Buffer[] = [];
  const d = new RecordDecoder((r) => out.push(Buffer.from(r)), max);
  for (const c of input) d.push(c);
  return out;
}

// Three records: one single-fragment, one in three fragments (one of them empty), one empty record.
const STREAM = hex(`
  80 00 00 05  68 65 6c 6c 6f        # last fragment, 5 bytes "hello"
  00 00 00 02  61 62                 # fragment of 2 "ab"
  00 00 00 00                        # an empty non-last fragment
  80 00 00 03  63 64 65              # last fragment, 3 "cde"
  80 00 00 00                        # an empty record
`);
const EXPECTED = ['hello', 'abcde', ''];

test('encodeRecordMark sets the last-fragment bit', (t) => {
  t.deepEqual(encodeRecordMark(5), hex('80 00 00 05'));
  t.deepEqual(encodeRecordMark(0x7fffffff, false), hex('7f ff ff ff'));
});

test('whole stream in one chunk', (t) => {
  t.deepEqual(decodeAll([STREAM]).map(String), EXPECTED);
});

test('split at every byte offset', (t) => {
  for (let i = 0; i <= STREAM.length; i++) {
    t.deepEqual(decodeAll([STREAM.subarray(0, i), STREAM.subarray(i)]).map(String), EXPECTED, `split at ${i}`);
  }
});

test('split at every pair of offsets', (t) => {
  for (let i = 0; i <= STREAM.length; i++) {
    for (let j = i; j <= STREAM.length; j++) {
      t.deepEqual(decodeAll([STREAM.subarray(0, i), STREAM.subarray(i, j), STREAM.subarray(j)]).map(String), EXPECTED);
    }
  }
});

test('one byte at a time', (t) => {
  t.deepEqual(decodeAll([...STREAM].map((b) => Buffer.of(b))).map(String), EXPECTED);
});

test('a record that arrives whole is handed out without a copy', (t) => {
  const seen: Buffer[] = [];
  const chunk = hex('80 00 00 04 01 02 03 04');
  new RecordDecoder((r) => seen.push(r)).push(chunk);
  t.is(seen[0]?.buffer, chunk.buffer);
});

test('an oversized fragment is refused as soon as its header arrives', (t) => {
  let records = 0;
  const d = new RecordDecoder(() => records++, 1024);
  t.notThrows(() => d.push(hex('00 00 04')), 'three header bytes decide nothing');
  t.throws(() => d.push(hex('01')), { instanceOf: RecordMarkError }, 'the fourth byte makes it 1025');
  t.is(records, 0);
});

test('a 2 GiB fragment header is refused with no body sent', (t) => {
  const d = new RecordDecoder(() => undefined);
  t.throws(() => d.push(hex('ff ff ff ff')), { instanceOf: RecordMarkError });
  t.throws(() => d.push(hex('00')), { instanceOf: RecordMarkError }, 'stays failed');
});

test('the cap applies to the sum of fragments', (t) => {
  const d = new RecordDecoder(() => undefined, 10);
  d.push(hex('00 00 00 06 01 02 03 04 05 06'));
  t.throws(() => d.push(hex('80 00 00 05')), { instanceOf: RecordMarkError, message: /11 bytes/ });
});

test('a record exactly at the cap is accepted', (t) => {
  const body = Buffer.alloc(100, 1);
  const out = decodeAll([encodeRecordMark(60, false), body.subarray(0, 60), encodeRecordMark(40), body.subarray(60)], 100);
  t.is(out.length, 1);
  t.deepEqual(out[0], body);
});

test('the default cap admits a 1 MiB WRITE with headers', (t) => {
  const body = Buffer.alloc(1024 * 1024 + 200, 2);
  const out = decodeAll([encodeRecordMark(body.length), body.subarray(0, 1000), body.subarray(1000)]);
  t.is(out[0]?.length, body.length);
});

// Record buffer reuse: only after release, bounded, never while a record is still held.
function assembled(payload: Buffer): Buffer[] {
  // Split so the record cannot be handed out as a view of one chunk.
  const mid = payload.length >> 1;
  return [Buffer.concat([encodeRecordMark(payload.length), payload.subarray(0, mid)]), payload.subarray(mid)];
}

test('RecordDecoder reuses a record buffer only once it is released', (t) => {
  const got: { record: Buffer; release: (() => void) | undefined }[] = [];
  const d = new RecordDecoder((record, release) => got.push({ record, release }), DEFAULT_MAX_RECORD, 2);
  const a = Buffer.alloc(100_000, 0xaa);
  const b = Buffer.alloc(100_000, 0xbb);
  for (const c of assembled(a)) d.push(c);
  for (const c of assembled(b)) d.push(c);
  const [ra, rb] = got as [(typeof got)[0], (typeof got)[0]];
  t.not(ra.record.buffer, rb.record.buffer, 'a record still held is never assembled into');
  t.true(ra.record.equals(a) && rb.record.equals(b));
  ra.release?.();
  ra.release?.(); // twice is harmless
  t.is(d.freeBuffers, 1);
  const c = Buffer.alloc(100_000, 0xcc);
  for (const ch of assembled(c)) d.push(ch);
  const rc = got[2] as (typeof got)[0];
  t.is(rc.record.buffer, ra.record.buffer, 'the released buffer is reused');
  t.true(rb.record.equals(b), 'the unreleased record is untouched');
  t.true(rc.record.equals(c));
  t.is(d.freeBuffers, 0);
  // The free list is bounded: three held records released, two kept.
  for (const ch of assembled(a)) d.push(ch);
  t.is(got.length, 4);
  for (const g of got) g.release?.();
  t.is(d.freeBuffers, 2);
  // A record handed out as a view of the input chunk has no release.
  d.push(Buffer.concat([encodeRecordMark(8), Buffer.alloc(8)]));
  t.is(got[4]?.release, undefined);
});

test('RecordDecoder: a small released buffer is replaced, not overflowed, by a bigger record', (t) => {
  const got: { record: Buffer; release: (() => void) | undefined }[] = [];
  const d = new RecordDecoder((record, release) => got.push({ record, release }), DEFAULT_MAX_RECORD, 4);
  for (const c of assembled(Buffer.alloc(300, 1))) d.push(c);
  got[0]?.release?.();
  const big = Buffer.alloc(200_000, 2);
  for (const c of assembled(big)) d.push(c);
  t.true(got[1]?.record.equals(big));
  t.true((got[1]?.record.buffer.byteLength ?? 0) >= 200_000);
});
