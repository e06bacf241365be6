/**
 * The VM image of the boot test and the boot bench: the Debian root that
 * test/e2e/guest/debian-image.sh caches, plus a layer with the check systemd runs
 * (test/e2e/guest/vm-check), and the .deb the check installs.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, linkSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../kernel/guest.js';

/** Where debian-image.sh keeps the Debian image (oci/, ready). */
export const DEBIAN = join(process.env['UNION_NFSD_CACHE'] ?? join(REPO_ROOT, '.cache'), 'debian');

/**
 * The cached Debian layout plus a layer of this test's: the check, its unit, and the serial
 * getty masked (the minbase root has no udev, so /dev/ttyS0 would never show up as a device
 * and systemd would wait 90 s for it). Blobs are hard-linked (content-addressed, never
 * changed); index.json is copied, since umoci rewrites it.
 */
export function bootImage(base: string): string {
  const layout = join(base, 'image');
  const from = join(DEBIAN, 'oci');
  mkdirSync(join(layout, 'blobs/sha256'), { recursive: true });
  for (const f of ['oci-layout', 'index.json']) copyFileSync(join(from, f), join(layout, f));
  for (const b of readdirSync(join(from, 'blobs/sha256'))) linkSync(join(from, 'blobs/sha256', b), join(layout, 'blobs/sha256', b));
  const stage = join(base, 'stage');
  const units = join(stage, 'etc/systemd/system');
  mkdirSync(join(units, 'multi-user.target.wants'), { recursive: true });
  mkdirSync(join(stage, 'usr/local/sbin'), { recursive: true });
  copyFileSync(join(REPO_ROOT, 'test/e2e/guest/vm-check'), join(stage, 'usr/local/sbin/vm-check'));
  chmodSync(join(stage, 'usr/local/sbin/vm-check'), 0o755);
  writeFileSync(join(units, 'vm-check.service'), [
    '[Unit]', 'Description=union-nfsd boot check', 'After=multi-user.target',
    '[Service]', 'Type=oneshot', 'ExecStart=/usr/local/sbin/vm-check', '',
  ].join('\n'));
  symlinkSync('../vm-check.service', join(units, 'multi-user.target.wants/vm-check.service'));
  symlinkSync('/dev/null', join(units, 'serial-getty@ttyS0.service'));
  const tar = join(base, 'vm-layer.tar');
  execFileSync('tar', ['-C', stage, '--owner=0', '--group=0', '--numeric-owner', '-cf', tar, 'etc', 'usr']);
  execFileSync('umoci', ['raw', 'add-layer', '--image', `${layout}:bookworm`, '--tag', 'vm', tar]);
  return `oci:${layout}:vm`;
}

/** A package with no dependencies, for apt-get to install from a file. */
export function probeDeb(base: string): Buffer {
  const pkg = join(base, 'probe');
  mkdirSync(join(pkg, 'DEBIAN'), { recursive: true });
  mkdirSync(join(pkg, 'usr/bin'), { recursive: true });
  writeFileSync(join(pkg, 'DEBIAN/control'), 'Package: union-nfsd-probe\nVersion: 1.0\nArchitecture: all\nMaintainer: union-nfsd tests <tests@localhost>\nDescription: installed by the boot test\n');
  writeFileSync(join(pkg, 'usr/bin/union-nfsd-probe'), '#!/bin/sh\necho probe ok\n', { mode: 0o755 });
  execFileSync('dpkg-deb', ['--root-owner-group', '--build', pkg, join(base, 'probe.deb')], { stdio: 'ignore' });
  return readFileSync(join(base, 'probe.deb'));
}

