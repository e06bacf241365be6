/**
 * The configuration file (--config FILE): several exports and the listening settings, in YAML
 * (parsed by the `yaml` package, YAML 1.2, so `no` stays a string), with every error naming
 * the file and line. Keys are the command line's option names:
 *
 *   host: 0.0.0.0            # port, mount-port, portmap (true/false), busy-poll, control,
 *                            # grace-period, nsm-dir, image-cache, plain-http, and the
 *                            # limits (max-connections, idle-timeout, ...) likewise
 *   metrics: 127.0.0.1:9464  # or a port alone (on 127.0.0.1), as --metrics
 *   exports:
 *     - path: /base
 *       lower: [/srv/layers/app, /srv/layers/os]     # or "A:B", top-most first
 *       clients: "10.0.0.0/24(ro) 10.0.9.1(rw)"      # or a list, one rule per item
 *     - path: /node7
 *       lower: /srv/layers/app:/srv/layers/os
 *       upper: /srv/union/node7/upper
 *       workdir: /srv/union/node7/work
 *       whiteout: overlayfs
 *       fsid: 7
 *       clients: 10.0.0.7(rw,no_root_squash)
 *     - path: /vm              # an OCI image's layers as lowers (below any lower:)
 *       image: docker://registry.lan:5000/debian:12        # or oci:/srv/images/debian:12
 *       upper: /srv/vm/upper
 *       workdir: /srv/vm/work
 *       clients: 10.0.2.0/24(rw,no_root_squash)
 *     - path: /fleet           # a union of its own for every client, over shared lowers
 *       lower: /srv/layers/os
 *       upper: /srv/fleet/{client}/upper
 *       workdir: /srv/fleet/{client}/work
 *       names: {node1: 10.0.1.1}                      # {client}: a name, else the address
 *       clients: 10.0.1.0/24(rw,no_root_squash)
 *
 * Rules: unknown keys are errors (a misspelt `clients` must not open an export to the world);
 * `clients` is required, so an export says who may use it; `fsid` (the export's id in its file
 * handles, 0-16777215) defaults to a hash of the path, and must be kept when the path changes
 * for clients to keep their handles; export paths and fsids are unique.
 */
import { readFileSync } from 'node:fs';
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair, type Scalar, type YAMLMap } from 'yaml';
import { ClientRuleError, parseClientRules, type ParsedRule } from './exports/client-rules.js';
import {
  checkExportPath, checkFsid, checkGrace, checkImage, checkPerClient, checkWhiteout, LIMIT_OPTIONS, METRICS_HOST, parseLimit, parseListen, UsageError,
  type ExportConfig, type ServerOptions,
} from './config.js';
import { DEFAULT_BUSY_POLL_US } from './rpc/busy-poll.js';
import { FSID_MAX } from './vfs/identity.js';
import type { RpcLimits } from './rpc/limits.js';

const TOP_KEYS = ['host', 'port', 'mount-port', 'portmap', 'busy-poll', 'control', 'metrics', 'grace-period', 'nsm-dir', 'image-cache', 'plain-http',
  ...LIMIT_OPTIONS.map((l) => l.name), 'exports'] as const;
const EXPORT_KEYS = ['path', 'lower', 'image', 'upper', 'workdir', 'state', 'whiteout', 'fsid', 'clients', 'names'] as const;

export type FileSettings = Omit<ServerOptions, 'host' | 'port' | 'portmap' | 'busyPollUs'> &
  Partial<Pick<ServerOptions, 'host' | 'port' | 'portmap' | 'busyPollUs'>>;

export function loadConfigFile(file: string): FileSettings {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  return parseConfig(text, file);
}

export function parseConfig(text: string, file: string): FileSettings {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: true });
  const at = (node: Node | Pair | null | undefined): string => {
    const offset = (isPair(node) ? (node.key as Node | null) : node)?.range?.[0];
    return offset === undefined ? file : `${file}:${lines.linePos(offset).line}`;
  };
  const fail = (node: Node | Pair | null | undefined, message: string): never => {
    throw new UsageError(`${at(node)}: ${message}`);
  };
  const first = doc.errors[0];
  if (first !== undefined) throw new UsageError(`${file}:${first.linePos?.[0].line ?? '?'}: ${first.message.split('\n')[0]}`);
  const root = doc.contents;
  if (!isMap(root)) return fail(root, 'the file must be a mapping with an `exports:` list');
  const top = keys(root, TOP_KEYS, 'setting', fail);

  const exportsNode = top.get('exports');
  if (!isSeq(exportsNode) || exportsNode.items.length === 0) return fail(exportsNode ?? root, '`exports:` must be a list of at least one export');
  const exports: ExportConfig[] = [];
  for (const item of exportsNode.items) {
    if (!isMap(item)) return fail(item as Node, 'each export is a mapping (path:, lower:, clients:, ...)');
    exports.push(exportOf(item, keys(item, EXPORT_KEYS, 'export key', fail), at, fail));
  }
  for (let i = 0; i < exports.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = exports[i]!, b = exports[j]!;
      if (a.path === b.path) throw new UsageError(`${a.source}: export path ${a.path} is also the path of the export at ${b.source}`);
      if (a.fsid === b.fsid) throw new UsageError(`${a.source}: fsid ${a.fsid} is also the fsid of ${b.path} (${b.source}); give one of them another \`fsid:\``);
    }
  }

  const host = optional(top.get('host'), 'string', fail);
  const port = optional(top.get('port'), 'number', fail);
  const mountPort = optional(top.get('mount-port'), 'number', fail);
  const portmap = optional(top.get('portmap'), 'boolean', fail);
  const busyPollUs = optional(top.get('busy-poll'), 'number', fail);
  const control = optional(top.get('control'), 'string', fail);
  const graceGiven = optional(top.get('grace-period'), 'number', fail);
  const graceSeconds = graceGiven === undefined ? undefined : (() => {
    try {
      return checkGrace(graceGiven, graceGiven, 'grace-period');
    } catch (err) {
      return fail(top.get('grace-period'), (err as Error).message);
    }
  })();
  const nsmDir = optional(top.get('nsm-dir'), 'string', fail);
  const imageCache = optional(top.get('image-cache'), 'string', fail);
  const limits: Partial<Record<keyof RpcLimits, number>> = {};
  for (const l of LIMIT_OPTIONS) {
    const node = top.get(l.name);
    if (node === undefined) continue;
    try {
      limits[l.field] = parseLimit(l, isScalar(node) ? node.value : undefined, l.name);
    } catch (err) {
      fail(node, (err as Error).message);
    }
  }
  const plainHttp = optional(top.get('plain-http'), 'boolean', fail);
  const metricsNode = top.get('metrics');
  const metrics = metricsNode === undefined ? undefined : (() => {
    if (!isScalar(metricsNode) || (typeof metricsNode.value !== 'string' && typeof metricsNode.value !== 'number')) return fail(metricsNode, 'metrics wants PORT or HOST:PORT');
    try {
      return parseListen(String(metricsNode.value), 'metrics', METRICS_HOST);
    } catch (err) {
      return fail(metricsNode, (err as Error).message);
    }
  })();
  for (const [name, v, max] of [['port', port, 65535], ['mount-port', mountPort, 65535], ['busy-poll', busyPollUs, 1_000_000]] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > max)) fail(top.get(name), `${name} wants an integer 0-${max}, got ${v}`);
  }
  return {
    exports,
    ...(host !== undefined && { host }),
    ...(port !== undefined && { port }),
    ...(mountPort !== undefined && { mountPort }),
    ...(portmap !== undefined && { portmap }),
    ...(control !== undefined && { control }),
    ...(metrics !== undefined && { metrics }),
    ...(graceSeconds !== undefined && { graceSeconds }),
    ...(nsmDir !== undefined && { nsmDir }),
    ...(imageCache !== undefined && { imageCache }),
    ...(plainHttp !== undefined && { plainHttp }),
    ...(Object.keys(limits).length > 0 && { limits }),
    busyPollUs: busyPollUs ?? DEFAULT_BUSY_POLL_US,
  };
}

type Fail = (node: Node | Pair | null | undefined, message: string) => never;

/** The map's values by key, refusing keys not in `allowed`. */
function keys<K extends string>(map: YAMLMap, allowed: readonly K[], what: string, fail: Fail): Map<K, Node | null> {
  const out = new Map<K, Node | null>();
  for (const pair of map.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
    if (key === undefined || !(allowed as readonly string[]).includes(key)) {
      fail(pair, `unknown ${what} '${key ?? '?'}' (known: ${allowed.join(', ')})`);
    }
    out.set(key as K, pair.value as Node | null);
  }
  return out;
}

function optional<T extends 'string' | 'number' | 'boolean'>(node: Node | null | undefined, type: T, fail: Fail):
  (T extends 'string' ? string : T extends 'number' ? number : boolean) | undefined {
  if (node === undefined) return undefined;
  if (!isScalar(node) || typeof node.value !== type) return fail(node, `wants a ${type}`);
  return node.value as never;
}

function exportOf(item: YAMLMap, v: Map<(typeof EXPORT_KEYS)[number], Node | null>, at: (n: Node | null | undefined) => string, fail: Fail): ExportConfig {
  const source = at(item);
  const pathNode = v.get('path');
  const path = optional(pathNode, 'string', fail) ?? fail(item, 'an export needs `path:` (the path clients mount)');
  const wrap = <T>(node: Node | null | undefined, f: () => T): T => {
    try {
      return f();
    } catch (err) {
      if (err instanceof UsageError) throw new UsageError(`${at(node)}: ${err.message}`);
      throw err;
    }
  };
  const imageNode = v.get('image');
  const image = imageNode === undefined ? undefined : wrap(imageNode, () => checkImage(optional(imageNode, 'string', fail) as string, 'image'));
  const lowerNode = v.get('lower');
  let lowers: string[];
  if (isSeq(lowerNode)) lowers = lowerNode.items.map((l) => optional(l as Node, 'string', fail) as string);
  else if (lowerNode === undefined && image !== undefined) lowers = [];
  else lowers = (optional(lowerNode, 'string', fail) ?? fail(item, 'an export needs `lower:` (its read-only layers, top-most first) or `image:`')).split(':');
  lowers = lowers.filter((l) => l !== '');
  if (lowers.length === 0 && image === undefined) fail(lowerNode, '`lower:` names no directory');
  const upper = optional(v.get('upper'), 'string', fail);
  const workdir = optional(v.get('workdir'), 'string', fail);
  if ((upper === undefined) !== (workdir === undefined)) fail(item, '`upper:` and `workdir:` go together (the workdir holds copy-up temporaries)');
  const state = optional(v.get('state'), 'string', fail);
  const namesNode = v.get('names');
  let names: Record<string, string> | undefined;
  if (namesNode !== undefined) {
    if (!isMap(namesNode)) fail(namesNode, '`names:` maps a client name to its address (node7: 10.0.1.7)');
    names = {};
    for (const pair of (namesNode as YAMLMap).items) {
      const value = optional(pair.value as Node, 'string', fail);
      if (!isScalar(pair.key) || value === undefined) fail(pair, '`names:` maps a client name to its address (node7: 10.0.1.7)');
      names[String((pair.key as Scalar).value)] = value as string;
    }
  }
  wrap(item, () => checkPerClient({ ...(upper !== undefined && { upper }), ...(workdir !== undefined && { workdir }), ...(state !== undefined && { state }), ...(names !== undefined && { names }) }, 'export'));
  const whiteout = wrap(v.get('whiteout'), () => checkWhiteout(optional(v.get('whiteout'), 'string', fail) ?? 'oci', 'whiteout'));
  const normalized = wrap(pathNode, () => checkExportPath(path, 'path'));
  const fsidNode = v.get('fsid');
  const fsid = fsidNode === undefined ? pathFsid(normalized) : wrap(fsidNode, () => checkFsid(isScalar(fsidNode) ? fsidNode.value : undefined, 'fsid'));

  const clientsNode = v.get('clients');
  if (clientsNode === undefined) fail(item, 'an export needs `clients:` (exports(5) rules such as "10.0.0.0/24(rw)"; "*(ro)" for everyone)');
  const texts = isSeq(clientsNode) ? clientsNode.items.map((c) => [c as Node, optional(c as Node, 'string', fail)] as const)
    : [[clientsNode, optional(clientsNode, 'string', fail)] as const];
  const clients: ParsedRule[] = [];
  for (const [node, text] of texts) {
    try {
      clients.push(...parseClientRules(text ?? ''));
    } catch (err) {
      if (err instanceof ClientRuleError) fail(node, `clients: ${err.message}`);
      throw err;
    }
  }
  if (clients.length === 0) fail(clientsNode, '`clients:` names no client');
  return {
    path: normalized, lowers,
    ...(image !== undefined && { image }),
    ...(upper !== undefined && { upper }),
    ...(workdir !== undefined && { workdir }),
    ...(state !== undefined && { state }),
    ...(names !== undefined && { names }),
    whiteoutFormat: whiteout, fsid, clients, defaultClients: false, source,
  };
}

/** The default fsid of an export path: FNV-1a folded to 24 bits, never 0 (the command line's). */
export function pathFsid(path: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(path)) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return ((h >>> 24) ^ (h & FSID_MAX)) || 1;
}
