/**
 * Issue 17: the capabilities the systemd unit grants (deploy/union-nfsd.service,
 * CapabilityBoundingSet) are enough for everything the server does as root, and each one is
 * needed. The server runs under `setpriv` with exactly that bounding set, and a libnfs client
 * does what needs each capability: create a file for another uid (CHOWN), set its setgid bit
 * (FOWNER, FSETID), read a 0600 file of another user (DAC_OVERRIDE), delete a lower file in
 * the overlayfs format (a 0/0 device, which Linux 5.8 and later let anyone make), change a
 * lower device node (its copy-up makes a device: MKNOD), recreate a deleted lower directory
 * (an opaque directory: trusted.overlay.opaque, SYS_ADMIN). Then the same without MKNOD must
 * fail: the test notices a capability missing from the unit.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { compileDriver, run } from './libnfs/driver.js';
import { gate, missing, repoRoot } from './libnfs/env.js';
import { cleanupTemp, layerFingerprint, makeTemp } from './libnfs/oracle.js';
import { TestServer } from './libnfs/server.js';

/** The unit's capabilities, as setpriv spells them (chown, fowner, ...). */
function unitCapabilities(): string[] {
  const unit = fs.readFileSync(join(repoRoot, 'deploy/union-nfsd.service'), 'utf8');
  const line = /^CapabilityBoundingSet=(.*)$/m.exec(unit)?.[1];
  if (line === undefined) throw new Error('the unit sets no CapabilityBoundingSet');
  return line.trim().split(/\s+/).map((c) => c.replace(/^CAP_/, '').toLowerCase());
}

function hasSetpriv(): boolean {
  try {
    execFileSync('setpriv', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const SECRET = 'only for uid 1000\n';

const SCRIPT = [
  'create made 644',
  'chmod made 2755',
  'cat secret',
  'unlink gone',
  'rmrf dir',
  'mkdir dir 755',
  'mkfifo fifo 640',
  'chmod devnode 600',
  'stat made',
];

async function serveAndRun(t: { log: (s: string) => void }, dir: string, caps: string[]): Promise<string[]> {
  const server = new TestServer({
    lowers: [join(dir, 'lower')], upper: join(dir, 'upper'), workdir: join(dir, 'work'), whiteout: 'overlayfs',
    wrap: ['setpriv', `--bounding-set=-all,${caps.map((c) => `+${c}`).join(',')}`, '--inh-caps=-all', '--no-new-privs', '--'],
  });
  try {
    await server.start();
    const ops = await compileDriver('ops');
    const r = await run(ops, [`${server.url()}&uid=1000&gid=1000`], { input: SCRIPT.join('\n') + '\n', timeoutMs: 60_000 });
    if (r.code !== 0) t.log(`ops: ${r.stderr}\n${server.output()}`);
    return r.stdout.trim().split('\n');
  } finally {
    await server.stop();
  }
}

function makeLayers(dir: string): void {
  for (const d of ['lower/dir', 'upper', 'work']) fs.mkdirSync(join(dir, d), { recursive: true });
  fs.writeFileSync(join(dir, 'lower/secret'), SECRET, { mode: 0o600 });
  fs.chownSync(join(dir, 'lower/secret'), 1000, 1000);
  fs.writeFileSync(join(dir, 'lower/gone'), 'deleted through the export\n');
  fs.writeFileSync(join(dir, 'lower/dir/old'), 'hidden once dir is made again\n');
  execFileSync('mknod', ['-m', '644', join(dir, 'lower/devnode'), 'c', '1', '3']);
  fs.chownSync(join(dir, 'lower/devnode'), 1000, 1000);
  fs.chmodSync(join(dir, 'lower'), 0o777);
  fs.chmodSync(join(dir, 'upper'), 0o777);
  fs.chmodSync(join(dir, 'lower/dir'), 0o777);
}

test('the unit\'s capability bounding set is enough for every operation, and MKNOD in it is needed', async (t) => {
  const unmet = missing({ root: true, libnfsDev: true, server: true, xattr: true });
  if (!hasSetpriv()) unmet.push('setpriv (util-linux)');
  if (!gate(t, 'capabilities', unmet)) return;
  const caps = unitCapabilities();
  t.true(caps.length > 0 && !caps.includes('setuid') && !caps.includes('sys_ptrace'), caps.join(' '));

  const dir = makeTemp('unfs-caps-');
  try {
    makeLayers(dir);
    const lowerBefore = layerFingerprint(join(dir, 'lower'));
    const out = await serveAndRun(t, dir, caps);
    t.is(layerFingerprint(join(dir, 'lower')), lowerBefore, 'the lower layer is byte-identical');
    t.is(out.length, SCRIPT.length, out.join('\n'));
    for (const line of out) t.regex(line, /\tOK/, line);
    const secret = createHash('sha256').update(SECRET).digest('hex');
    t.true((out[2] ?? '').endsWith(`\tOK\t${SECRET.length}\\x20${secret}`), 'a 0600 file of uid 1000 read for uid 1000');
    const made = fs.statSync(join(dir, 'upper/made'));
    t.is(made.uid, 1000);
    t.is(made.gid, 1000);
    t.is(made.mode & 0o7777, 0o2755, 'setgid kept (FSETID)');
    const gone = fs.lstatSync(join(dir, 'upper/gone'));
    t.true(gone.isCharacterDevice() && gone.rdev === 0, 'an overlayfs whiteout (MKNOD)');
    const opaque = execFileSync('getfattr', ['--absolute-names', '-n', 'trusted.overlay.opaque', '--only-values', join(dir, 'upper/dir')], { encoding: 'utf8' });
    t.is(opaque, 'y', 'an opaque directory (SYS_ADMIN)');
    t.false(fs.existsSync(join(dir, 'upper/dir/old')));
    t.true(fs.lstatSync(join(dir, 'upper/fifo')).isFIFO());
    t.is(fs.lstatSync(join(dir, 'upper/fifo')).uid, 1000);
    const dev = fs.lstatSync(join(dir, 'upper/devnode'));
    t.true(dev.isCharacterDevice() && dev.rdev === fs.lstatSync(join(dir, 'lower/devnode')).rdev && (dev.mode & 0o777) === 0o600, 'a device copied up (MKNOD)');
  } finally {
    cleanupTemp(dir);
  }

  const without = makeTemp('unfs-caps-');
  try {
    makeLayers(without);
    const lowerBefore = layerFingerprint(join(without, 'lower'));
    const out = await serveAndRun(t, without, caps.filter((c) => c !== 'mknod'));
    t.is(layerFingerprint(join(without, 'lower')), lowerBefore, 'the lower layer is byte-identical');
    t.regex(out[7] ?? '', /^8\tchmod devnode 600\tERR/, 'without MKNOD a device cannot be copied up');
    t.is(fs.lstatSync(join(without, 'lower/devnode')).mode & 0o777, 0o644, 'and the lower device is untouched');
    t.false(fs.existsSync(join(without, 'upper/devnode')));
  } finally {
    cleanupTemp(without);
  }
});
