/**
 * A network for guests that the server must be able to call back (lock callbacks, SM_NOTIFY):
 * one network namespace holding a bridge with the server's address and one tap device per
 * guest. The server runs inside the namespace (TestServer's `wrap`), so its own portmapper
 * takes port 111 there whatever the host runs; qemu opens the taps from inside it too
 * (guest.ts). Nothing is routed out: the namespace has no other link. 198.19.7.0/24 lies in
 * 198.18.0.0/15, reserved for benchmarks.
 */
import { execFileSync } from 'node:child_process';
import type { GuestTap } from './guest.js';

export interface GuestNet {
  readonly netns: string;
  /** The server's address on the bridge. */
  readonly server: string;
  readonly guests: readonly GuestTap[];
  /** argv prefix that runs a command inside the namespace. */
  readonly exec: readonly string[];
  remove(): void;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

let made = 0;

export function makeGuestNet(guests: number): GuestNet {
  const netns = `unfs-${(process.pid % 100000).toString(36)}${(made++).toString(36)}-guests`;
  const remove = () => {
    try { ip('netns', 'del', netns); } catch { /* already gone */ }
  };
  try {
    ip('netns', 'add', netns);
    ip('-n', netns, 'link', 'set', 'lo', 'up');
    ip('-n', netns, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', netns, 'addr', 'add', '198.19.7.1/24', 'dev', 'br0');
    ip('-n', netns, 'link', 'set', 'br0', 'up');
    const taps: GuestTap[] = [];
    for (let i = 0; i < guests; i++) {
      const ifname = `tap${i}`;
      ip('-n', netns, 'tuntap', 'add', 'dev', ifname, 'mode', 'tap');
      ip('-n', netns, 'link', 'set', ifname, 'master', 'br0');
      ip('-n', netns, 'link', 'set', ifname, 'up');
      taps.push({ netns, ifname, address: `198.19.7.${i + 2}/24`, mac: `52:54:00:19:07:${(i + 2).toString(16).padStart(2, '0')}` });
    }
    return { netns, server: '198.19.7.1', guests: taps, exec: ['ip', 'netns', 'exec', netns], remove };
  } catch (err) {
    remove();
    throw err;
  }
}

/** Whether tap devices can be made here (root, iproute2, /dev/net/tun); else what is missing. */
export function canMakeTaps(): string | undefined {
  if (process.getuid?.() !== 0) return 'root (network namespaces, tap devices)';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
  } catch {
    return 'iproute2 (ip netns)';
  }
  try {
    execFileSync('test', ['-c', '/dev/net/tun']);
  } catch {
    return '/dev/net/tun';
  }
  return undefined;
}
