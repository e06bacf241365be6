/**
 * Client hosts with addresses of their own: one network namespace per client, joined to the
 * test's (root) namespace by a veth pair. Client i is 198.18.i.2 and reaches the server at
 * 198.18.i.1 (198.18.0.0/15 is reserved for benchmarks: never a real network). Traffic stays
 * on the veth pairs; deleting a namespace deletes its pair.
 */
import { execFileSync } from 'node:child_process';

export interface ClientHost {
  readonly ns: string;
  /** The client's own address. */
  readonly address: string;
  /** The server's address as this client sees it. */
  readonly server: string;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

export function canMakeNamespaces(): string | undefined {
  if (process.getuid?.() !== 0) return 'root (network namespaces)';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'iproute2 (ip netns)';
  }
}

let made = 0;

export function makeClientHosts(n: number): { hosts: ClientHost[]; remove(): void } {
  // Names unique per call: the kernel tears a deleted namespace's veth down asynchronously.
  const tag = `${(process.pid % 100000).toString(36)}${(made++).toString(36)}`;
  const hosts: ClientHost[] = [];
  const links: string[] = [];
  const remove = () => {
    for (const h of hosts) {
      try { ip('netns', 'del', h.ns); } catch { /* already gone */ }
    }
    // The next hosts reuse these addresses: wait (bounded) until the old links are gone.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && links.some((l) => { try { ip('link', 'show', l); return true; } catch { return false; } })) {
      execFileSync('sleep', ['0.1']);
    }
  };
  try {
    for (let i = 1; i <= n; i++) {
      const ns = `unfs-${tag}-c${i}`;
      const outside = `uh${tag}x${i}`;
      links.push(outside);
      ip('netns', 'add', ns);
      hosts.push({ ns, address: `198.18.${i}.2`, server: `198.18.${i}.1` });
      ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      ip('addr', 'add', `198.18.${i}.1/24`, 'dev', outside);
      ip('link', 'set', outside, 'up');
      ip('-n', ns, 'addr', 'add', `198.18.${i}.2/24`, 'dev', 'eth0');
      ip('-n', ns, 'link', 'set', 'eth0', 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
  } catch (err) {
    remove();
    throw err;
  }
  return { hosts, remove };
}

/** argv that runs `argv` inside the client's namespace, as `user` (default root). */
export function inHost(h: ClientHost, argv: readonly string[], user?: 'nobody'): [string, string[]] {
  const asUser = user === 'nobody' ? ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups'] : [];
  return ['ip', ['netns', 'exec', h.ns, ...asUser, ...argv]];
}
