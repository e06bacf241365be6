/**
 * Client rules in the syntax and with the meaning of exports(5), as knfsd applies them:
 *
 *   10.0.0.0/24(rw) 10.0.1.5(ro,all_squash,anonuid=1000) node7.lab(rw,insecure) *(ro)
 *
 * Rule: a rule is a client specification with options in parentheses (no space between them);
 * a bare specification takes the defaults. Specifications: an IPv4 or IPv6 address, a host
 * name (resolved to its addresses when the rules are loaded), a network as address/prefix or
 * address/netmask, and `*` for every client. A client matching several rules gets the first
 * match in this order, whatever the order written: single host, network, `*`; among rules of
 * one kind, the one written first (exports(5) "Machine Name Formats").
 *
 * Options and defaults as exports(5): `ro` (default) / `rw`; `root_squash` (default) /
 * `no_root_squash` / `all_squash`; `anonuid=N` / `anongid=N` (default 65534); `secure` (default:
 * calls must come from a source port below 1024) / `insecure`. `sync` and `no_subtree_check`
 * are accepted with no effect: union-nfsd always commits metadata before replying
 * (vfs/metadata-sync.ts) and checks every handle by its MAC. Anything else is refused, so a typo never silently grants or denies.
 * Wildcard host names and @netgroups need reverse DNS or NIS: refused with that reason.
 *
 * Example: '10.0.0.0/24(rw) 10.0.0.9' admits 10.0.0.9 read-only (the host rule wins), the rest
 * of 10.0.0.0/24 read-write, root squashed for all of them; 10.0.1.1 matches nothing.
 */
import { BlockList, isIP } from 'node:net';
import { lookup } from 'node:dns/promises';

export const ANON_ID = 65534;

export type Squash = 'none' | 'root' | 'all';

/** What a rule grants the clients it matches. */
export interface ClientOptions {
  readonly rw: boolean;
  readonly squash: Squash;
  readonly anonuid: number;
  readonly anongid: number;
  /** Calls only from a source port below 1024 (knfsd's `secure`). */
  readonly secure: boolean;
}

export const DEFAULT_OPTIONS: ClientOptions = Object.freeze({
  rw: false, squash: 'root', anonuid: ANON_ID, anongid: ANON_ID, secure: true,
});

/** Precedence order of exports(5): a lower rank wins whatever the written order. */
const RANK = { host: 0, network: 1, anonymous: 2 } as const;
export type SpecKind = keyof typeof RANK;

export interface ClientRule {
  /** The specification as written (what EXPORT lists and logs show). */
  readonly spec: string;
  readonly kind: SpecKind;
  /** Matching addresses; undefined for `*`. */
  readonly addresses?: BlockList;
  readonly options: ClientOptions;
}

/** A rule that is not valid exports(5), with the column (0-based) of the rule in the text. */
export class ClientRuleError extends Error {
  override name = 'ClientRuleError';
  constructor(message: string, readonly column: number) {
    super(message);
  }
}

/** Rules parsed from text, host names still unresolved (see resolveClientRules). */
export interface ParsedRule {
  readonly spec: string;
  readonly column: number;
  readonly options: ClientOptions;
}

const NO_EFFECT = new Set(['sync', 'no_subtree_check']);

export function parseClientRules(text: string): ParsedRule[] {
  const rules: ParsedRule[] = [];
  const re = /\S+/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const word = m[0];
    const open = word.indexOf('(');
    let spec = word;
    let options = DEFAULT_OPTIONS;
    if (open >= 0) {
      if (!word.endsWith(')') || /[()]/.test(word.slice(open + 1, -1))) {
        throw new ClientRuleError(`'${word}': options go in one pair of parentheses right after the client, with no spaces`, m.index);
      }
      spec = word.slice(0, open);
      options = parseOptions(word.slice(open + 1, -1), m.index);
    } else if (word.includes(')')) {
      throw new ClientRuleError(`'${word}': unbalanced parenthesis`, m.index);
    }
    // exports(5): "(rw)" alone, after a space, applies to every client.
    if (spec === '') spec = '*';
    checkSpec(spec, m.index);
    rules.push({ spec, column: m.index, options });
  }
  return rules;
}

function parseOptions(list: string, column: number): ClientOptions {
  const o: { -readonly [K in keyof ClientOptions]: ClientOptions[K] } = { ...DEFAULT_OPTIONS };
  for (const opt of list.split(',')) {
    const [name, value] = opt.split('=', 2) as [string, string | undefined];
    // Later options override earlier ones, as exportfs does.
    switch (name) {
      case 'rw': o.rw = true; break;
      case 'ro': o.rw = false; break;
      case 'root_squash': o.squash = 'root'; break;
      case 'no_root_squash': o.squash = 'none'; break;
      case 'all_squash': o.squash = 'all'; break;
      case 'no_all_squash': if (o.squash === 'all') o.squash = 'root'; break;
      case 'secure': o.secure = true; break;
      case 'insecure': o.secure = false; break;
      case 'anonuid': o.anonuid = id(name, value, column); break;
      case 'anongid': o.anongid = id(name, value, column); break;
      default:
        if (NO_EFFECT.has(name) && value === undefined) break;
        throw new ClientRuleError(`unknown option '${opt}' (known: rw, ro, root_squash, no_root_squash, all_squash, ` +
          `no_all_squash, anonuid=N, anongid=N, secure, insecure; sync and no_subtree_check are accepted)`, column);
    }
    if ((name === 'anonuid' || name === 'anongid') !== (value !== undefined)) {
      throw new ClientRuleError(`option '${opt}': ${value === undefined ? 'needs =N' : 'takes no value'}`, column);
    }
  }
  return Object.freeze(o);
}

function id(name: string, value: string | undefined, column: number): number {
  const n = Number(value);
  if (value === undefined || !/^\d+$/.test(value) || n > 0xffffffff) throw new ClientRuleError(`${name} wants a number 0-4294967295, got '${value ?? ''}'`, column);
  return n;
}

function checkSpec(spec: string, column: number): void {
  if (spec === '*') return;
  if (spec.startsWith('@')) throw new ClientRuleError(`'${spec}': netgroups are not supported (no NIS); list the hosts or their network`, column);
  if (/[*?[]/.test(spec)) throw new ClientRuleError(`'${spec}': wildcard host names need reverse DNS, which union-nfsd does not trust; use a network (address/prefix)`, column);
  const slash = spec.indexOf('/');
  if (slash >= 0) {
    network(spec, column);
    return;
  }
  if (isIP(spec) === 0 && !/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/.test(spec)) {
    throw new ClientRuleError(`'${spec}' is neither an address, a network, a host name nor *`, column);
  }
}

/** address/prefix or IPv4 address/netmask -> [address, prefix, family]. */
function network(spec: string, column: number): [string, number, 'ipv4' | 'ipv6'] {
  const slash = spec.indexOf('/');
  const address = spec.slice(0, slash);
  const mask = spec.slice(slash + 1);
  const family = isIP(address);
  if (family === 0) throw new ClientRuleError(`'${spec}': '${address}' is not an IP address`, column);
  const max = family === 4 ? 32 : 128;
  let prefix: number;
  if (/^\d+$/.test(mask)) {
    prefix = Number(mask);
  } else if (family === 4 && isIP(mask) === 4) {
    const bits = mask.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
    prefix = 32 - Math.log2(0x100000000 - bits);
    if (!Number.isInteger(prefix)) throw new ClientRuleError(`'${spec}': netmask ${mask} is not contiguous`, column);
  } else {
    throw new ClientRuleError(`'${spec}': '${mask}' is neither a prefix length nor an IPv4 netmask`, column);
  }
  if (prefix > max) throw new ClientRuleError(`'${spec}': prefix ${prefix} is longer than ${max} bits`, column);
  return [address, prefix, family === 4 ? 'ipv4' : 'ipv6'];
}

/**
 * Rules ready to match: host names resolved to every address they have now (a name that does
 * not resolve is an error: a rule that silently matches nothing hides a typo).
 */
export async function resolveClientRules(parsed: readonly ParsedRule[]): Promise<ClientRule[]> {
  return Promise.all(parsed.map(async (p): Promise<ClientRule> => {
    if (p.spec === '*') return { spec: p.spec, kind: 'anonymous', options: p.options };
    const addresses = new BlockList();
    if (p.spec.includes('/')) {
      const [address, prefix, family] = network(p.spec, p.column);
      addresses.addSubnet(address, prefix, family);
      return { spec: p.spec, kind: 'network', addresses, options: p.options };
    }
    const family = isIP(p.spec);
    if (family !== 0) {
      addresses.addAddress(p.spec, family === 4 ? 'ipv4' : 'ipv6');
    } else {
      let found;
      try {
        found = await lookup(p.spec, { all: true, verbatim: true });
      } catch (err) {
        throw new ClientRuleError(`host '${p.spec}' does not resolve (${(err as NodeJS.ErrnoException).code ?? String(err)})`, p.column);
      }
      for (const a of found) addresses.addAddress(a.address, a.family === 4 ? 'ipv4' : 'ipv6');
    }
    return { spec: p.spec, kind: 'host', addresses, options: p.options };
  }));
}

/** Rules in the order matching tries them: by kind, then as written (a stable sort). */
export function byPrecedence(rules: readonly ClientRule[]): ClientRule[] {
  return [...rules].sort((a, b) => RANK[a.kind] - RANK[b.kind]);
}

/**
 * A client's address as people write it: an IPv4-mapped IPv6 address (what a dual-stack
 * listener reports for an IPv4 client) as the IPv4 address it is; any other unchanged.
 */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * The rule that admits `address` (as a socket reports it: IPv4, IPv6, or IPv4-mapped IPv6,
 * which BlockList matches against IPv4 rules), or undefined. `rules` in byPrecedence order.
 */
export function matchClient(rules: readonly ClientRule[], address: string): ClientRule | undefined {
  const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
  for (const r of rules) {
    if (r.addresses === undefined || r.addresses.check(address, family)) return r;
  }
  return undefined;
}

/**
 * With no rule given: loopback only, read-write, root as root, and only from a privileged
 * source port, so on the server's own host only root (or the kernel client) can act at all
 * and a local user cannot claim uid 0 with a forged AUTH_SYS credential.
 */
export const DEFAULT_CLIENTS = '127.0.0.0/8(rw,no_root_squash) ::1(rw,no_root_squash)';

/** The rules as exports(5) would print them, for logs. */
export function describeRules(rules: readonly ClientRule[]): string {
  return rules.map((r) => `${r.spec}(${describeOptions(r.options)})`).join(' ');
}

export function describeOptions(o: ClientOptions): string {
  const s = [o.rw ? 'rw' : 'ro', o.squash === 'none' ? 'no_root_squash' : o.squash === 'all' ? 'all_squash' : 'root_squash'];
  if (o.squash !== 'none' && (o.anonuid !== ANON_ID || o.anongid !== ANON_ID)) s.push(`anonuid=${o.anonuid}`, `anongid=${o.anongid}`);
  s.push(o.secure ? 'secure' : 'insecure');
  return s.join(',');
}
