/**
 * A distribution registry (Debian's docker-registry package) on loopback for one test, with
 * its storage in a temporary directory, and skopeo to push images into it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../helpers/net.js';

export class TestRegistry {
  private child: ChildProcess | undefined;
  port = 0;

  constructor(private readonly dir: string) {}

  /** Where the registry keeps a blob's bytes (distribution's filesystem driver layout). */
  blobData(hex: string): string {
    return join(this.dir, 'data/docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
  }

  async start(): Promise<void> {
    this.port = await freePort();
    mkdirSync(this.dir, { recursive: true });
    const config = join(this.dir, 'config.yml');
    writeFileSync(config, `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${join(this.dir, 'data')}\nhttp:\n  addr: 127.0.0.1:${this.port}\n`);
    this.child = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
    const deadline = Date.now() + 15_000;
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${this.port}/v2/`).then((r) => r.ok, () => false);
      if (ok) return;
      if (Date.now() > deadline) throw new Error('docker-registry did not answer /v2/ within 15 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** skopeo copy of a layout's image into NAME:TAG here. */
  push(layout: string, tag: string, name: string): string {
    const ref = `docker://127.0.0.1:${this.port}/${name}:${tag}`;
    execFileSync('skopeo', ['copy', '--dest-tls-verify=false', `oci:${layout}:${tag}`, ref], { stdio: ['ignore', 'ignore', 'pipe'] });
    return ref;
  }

  stop(): void {
    this.child?.kill('SIGTERM');
    this.child = undefined;
  }
}
