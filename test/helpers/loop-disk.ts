/**
 * A small ext4 file system on a loop device whose power can be cut: the power-loss model of
 * the crash tests (issue 12).
 *
 * Rule: the file system is mounted with `commit=600`, so its journal commits only when an
 * fsync asks for it (or after 10 minutes), and the kernel writes dirty pages back only once
 * they are 30 s old (vm.dirty_expire_centisecs, checked). What the image file holds at an
 * instant is therefore what a disk would hold after a power cut then: what was fsynced,
 * and the metadata an fsync's journal commit took along. `powerCut` copies the image at that
 * instant, throws the mounted file system away with everything it had not written, and
 * mounts the copy, whose journal the kernel replays as after a real cut.
 * Races: call powerCut only when no process that writes to the disk is alive (a killed
 * server has exited: its fsyncs have returned), so no write lands during the copy.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';

function run(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export class LoopDisk {
  private mounted = false;

  /** A new file system of sizeMiB in `image`, mounted at `mountPoint`. */
  constructor(readonly image: string, readonly mountPoint: string, sizeMiB = 64) {
    const expire = Number(fs.readFileSync('/proc/sys/vm/dirty_expire_centisecs', 'utf8'));
    if (expire < 1000) throw new Error(`vm.dirty_expire_centisecs is ${expire}: dirty pages would be written back within the test's rounds`);
    fs.mkdirSync(mountPoint, { recursive: true });
    fs.writeFileSync(image, '');
    fs.truncateSync(image, sizeMiB << 20);
    // no lazy initialisation: nothing writes to the image in the background
    run('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', image]);
    this.mount();
  }

  private mount(): void {
    run('mount', ['-t', 'ext4', '-o', 'loop,commit=600', this.image, this.mountPoint]);
    this.mounted = true;
  }

  /** The disk as a power cut now would leave it, mounted again at the same place. */
  powerCut(): void {
    const cut = `${this.image}.cut`;
    fs.copyFileSync(this.image, cut);
    this.unmount();
    fs.renameSync(cut, this.image);
    this.mount();
  }

  unmount(): void {
    if (!this.mounted) return;
    run('umount', [this.mountPoint]);
    this.mounted = false;
  }

  destroy(): void {
    try { this.unmount(); } catch { /* still busy: left for the next boot */ }
    fs.rmSync(this.image, { force: true });
  }
}
