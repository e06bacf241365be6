/**
 * The differential test's operation script (driver/ops.c format) over standardLayers(): a fixed
 * part that covers every modifying procedure and the union cases of issue 4 in a deliberate
 * order, then a seeded pseudo-random part over a pool of paths (same seed = same script), for
 * at least 200 operations in all. Reads (cat/stat/ls/readlink/mtime) are interleaved so the
 * intermediate states are compared too, not just the final tree.
 */

/** Small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function fixedScript(): string[] {
  return [
    '# create / write / append / truncate / chmod / chown / utimes on a new file',
    'create n1 0644', 'write n1 0 5000 1', 'append n1 100 2', 'cat n1', 'stat n1', 'truncate n1 10', 'cat n1',
    'chmod n1 0600', 'chown n1 1000 1001', 'utimes n1 1000000 2000000', 'stat n1', 'mtime n1',
    '# offsets past 2^53 and past the file system: refused (EFBIG), nothing lands elsewhere',
    'write n1 9007199254740993 4 9', 'truncate n1 9007199254740993', 'write n1 1125899906842624 4 9', 'stat n1', 'cat n1',
    'createx n1 0644', 'create a/sub/deeper/new-deep 0640', 'write a/sub/deeper/new-deep 70000 3 4', 'cat a/sub/deeper/new-deep',
    '# copy-up by WRITE of lower files (top-most lower L2 copy, and a 3 MB file)',
    'cat a/f1', 'write a/f1 3 4 7', 'cat a/f1', 'stat a/f1', 'cat a/sub/deeper/deep.txt', 'append a/sub/deeper/deep.txt 10 8',
    'cat a/sub/deeper/deep.txt', 'write big.bin 1048576 10 3', 'cat big.bin', 'stat big.bin',
    '# copy-up by SETATTR: size, mode, owner, times',
    'truncate a/l2only 3', 'cat a/l2only', 'stat a/l2only', 'truncate tree/d2/f3 0', 'cat tree/d2/f3',
    'truncate tree/d4/f1 100000', 'cat tree/d4/f1', 'chmod owned.txt 0604', 'stat owned.txt', 'cat owned.txt',
    'chown b/y 42 43', 'stat b/y', 'chown setuid 7 7', 'stat setuid', 'utimes newtop 1234567 7654321', 'mtime newtop', 'stat newtop',
    'chmod a 0711', 'stat a', 'chown a/sub 5 6', 'stat a/sub', 'chmod sticky 0777', 'stat sticky',
    '# mkdir / rmdir, and rmdir + mkdir = opaque',
    'mkdir m1 0755', 'mkdir m1/m2 0700', 'mkdir m1 0755', 'stat m1/m2', 'rmdir m1', 'rmdir m1/m2', 'rmdir m1', 'stat m1',
    'rmdir a', 'rmdir a/f1', 'rmdir opq', 'ls opq', 'unlink opq/new', 'ls opq', 'rmdir opq', 'ls .', 'mkdir opq 0750', 'ls opq', 'stat opq',
    'create opq/old1 0644', 'cat opq/old1', 'ls opq',
    'unlink tree/d6/f0', 'unlink tree/d6/f1', 'unlink tree/d6/f2', 'unlink tree/d6/f3', 'unlink tree/d6/f4', 'unlink tree/d6/l2-6',
    'ls tree/d6', 'rmdir tree/d6', 'mkdir tree/d6 0755', 'ls tree/d6', 'create tree/d6/f0 0600', 'cat tree/d6/f0',
    '# symlinks (including ones pointing outside) and FIFOs',
    'symlink ../../etc/passwd a/evil', 'readlink a/evil', 'stat a/evil', 'symlink /etc a/abs-evil', 'readlink a/abs-evil',
    'symlink a/f1 rel2', 'readlink rel2', 'symlink x n1', 'readlink up-link', 'readlink a/sub/up2',
    'mkfifo a/fifo 0600', 'stat a/fifo', 'mkfifo pipe 0600', 'mkfifo tree/d7/fifo 0644', 'ls tree/d7',
    '# remove: whiteouts for lower names, re-create after remove',
    'unlink a/f1', 'ls a', 'cat a/f1', 'create a/f1 0644', 'cat a/f1', 'stat a/f1', 'unlink rel-link', 'ls .',
    'unlink dangling', 'unlink pipe', 'unlink null3', 'unlink a/sub/deeper/deep.txt', 'ls a/sub/deeper', 'unlink a',
    'unlink hl-three', 'stat hl/one',
    '# rename of files across layers',
    'rename top.txt a/sub/moved-top', 'cat a/sub/moved-top', 'stat top.txt', 'rename newtop tree/d1/newtop', 'stat tree/d1/newtop',
    'mtime tree/d1/newtop', 'rename a/l2only b/l2only', 'cat b/l2only', 'ls a', 'rename empty setuid', 'stat setuid', 'cat setuid',
    'rename tree/d8/f1 tree/d9/f1', 'cat tree/d9/f1', 'ls tree/d8', 'ls tree/d9', 'rename owned.txt owned2.txt', 'stat owned2.txt',
    'rename abs-link a/abs-link', 'readlink a/abs-link', 'rename n1 n1', 'rename nonexistent x', 'rename tree/d0/f0 nodir/x',
    '# rename of lower and merged directories (overlayfs: needs redirect_dir=on)',
    'rename ren/lowerdir ren/moved', 'ls ren', 'ls ren/moved', 'ls ren/moved/nested', 'cat ren/moved/nested/b', 'create ren/moved/newfile 0644',
    'rename ren/moved/nested ren/nested2', 'ls ren/nested2', 'rename ren/moved moved-top', 'ls moved-top', 'cat moved-top/a',
    'rename a/sub/deeper deeper2', 'ls deeper2', 'ls a/sub', 'cat deeper2/l1.txt', 'rename a a/sub/x', 'rename tree/d2 tree/d4',
    'rename tree/d10 tree/d11x', 'ls tree/d11x', 'mkdir tree/d10 0755', 'ls tree/d10',
    '# hard links to lower files',
    'link hl/two hl/link3', 'stat hl/link3', 'stat hl/one', 'stat hl/two', 'write hl/link3 0 5 11', 'cat hl/one', 'cat hl/two', 'cat hl/link3',
    'link a/sub/l2.txt a/l2-link', 'stat a/l2-link', 'write a/l2-link 0 3 9', 'cat a/sub/l2.txt', 'stat a/sub/l2.txt', 'link a a/dirlink',
    'link nonexistent x', 'unlink hl/two', 'stat hl/one',
    '# rm -rf of a merged tree, then the name again (opaque)',
    'rmrf tree', 'ls .', 'stat tree', 'mkdir tree 0755', 'ls tree', 'create tree/d0 0644', 'ls tree',
    'rmrf deeper2', 'ls .',
  ];
}

/** Seeded random operations over a pool of paths, some existing (lower/upper), some not. */
export function randomScript(seed: number, count: number): string[] {
  const rnd = prng(seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)] as T;
  const dirs = ['.', 'a', 'a/sub', 'b', 'hl', 'hostile', 'ren', 'moved-top', 'sticky', 'opq', 'tree', 'rnd'];
  const base = ['r0', 'r1', 'r2', 'r3', 'f1', 'l2.txt', 'y', 'x', 'new', 'd'];
  const path = () => {
    const d = pick(dirs);
    const n = pick(base);
    return d === '.' ? n : `${d}/${n}`;
  };
  const out = ['# random part', 'mkdir rnd 0755'];
  for (let i = 0; i < count; i++) {
    const p = path();
    const r = rnd();
    if (r < 0.12) out.push(`create ${p} 0${pick(['644', '600', '755'])}`);
    else if (r < 0.24) out.push(`write ${p} ${Math.floor(rnd() * 9000)} ${1 + Math.floor(rnd() * 3000)} ${i}`);
    else if (r < 0.30) out.push(`append ${p} ${1 + Math.floor(rnd() * 100)} ${i}`);
    else if (r < 0.36) out.push(`truncate ${p} ${Math.floor(rnd() * 5000)}`);
    else if (r < 0.42) out.push(`chmod ${p} 0${pick(['600', '640', '755', '700'])}`);
    else if (r < 0.46) out.push(`chown ${p} ${Math.floor(rnd() * 3)} ${Math.floor(rnd() * 3)}`);
    else if (r < 0.52) out.push(`mkdir ${p} 0755`);
    else if (r < 0.56) out.push(`rmdir ${p}`);
    else if (r < 0.64) out.push(`unlink ${p}`);
    else if (r < 0.72) out.push(`rename ${p} ${path()}`);
    else if (r < 0.76) out.push(`link ${p} ${path()}`);
    else if (r < 0.79) out.push(`symlink ${pick(['/etc/shadow', '../..', 'r0'])} ${p}`);
    else if (r < 0.82) out.push(`mkfifo ${p} 0644`);
    else if (r < 0.92) out.push(`cat ${p}`);
    else out.push(`stat ${p}`);
  }
  out.push('ls rnd', 'ls a', 'ls .');
  return out;
}

export function differentialScript(seed = 4): string[] {
  return [...fixedScript(), ...randomScript(seed, 160)];
}
