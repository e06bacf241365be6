/**
 * `union-nfsd --check-config FILE`: everything a start would check of a configuration file
 * (its syntax and keys, the layers' existence and overlaps, the client rules' host names),
 * without opening a union, creating a directory or listening; then what it would serve, in
 * words, so an operator can review a change before a SIGHUP or a restart applies it.
 */
import type { ExportConfig } from './config.js';
import { loadConfigFile } from './config-file.js';
import { checkExports, unionKind } from './exports/export-set.js';
import { byPrecedence, describeOptions, type ClientRule } from './exports/client-rules.js';

/** The report of a valid file; throws UsageError (with file:line) for an invalid one. */
export async function checkConfig(file: string): Promise<string> {
  const settings = loadConfigFile(file);
  const rules = await checkExports(settings.exports);
  const out = [`${file}: valid; it serves ${settings.exports.length} export(s)`];
  settings.exports.forEach((e, i) => out.push('', ...describeExport(e, rules[i]!)));
  const listen = [
    `listen ${settings.host ?? '0.0.0.0'}:${settings.port ?? 2049}`,
    ...(settings.mountPort !== undefined ? [`mount-port ${settings.mountPort}`] : []),
    `portmap ${settings.portmap === false ? 'off' : 'on'}`,
    ...(settings.metrics !== undefined ? [`metrics http://${settings.metrics.host}:${settings.metrics.port}/metrics`] : []),
    ...(settings.control !== undefined ? [`control ${settings.control}`] : []),
  ];
  out.push('', listen.join(', '));
  return out.join('\n');
}

function describeExport(e: ExportConfig, rules: readonly ClientRule[]): string[] {
  return [
    `export ${e.path}  (${e.source}; fsid ${e.fsid}; ${unionKind(e)})`,
    ...e.lowers.map((l, i) => `  lower ${i + 1}  ${l}`),
    ...(e.image !== undefined ? [`  image    ${e.image} (its layers below the lowers; pulled at start)`] : []),
    ...(e.upper !== undefined ? [`  upper    ${e.upper}`, `  workdir  ${e.workdir ?? ''}`] : []),
    ...(e.state !== undefined ? [`  state    ${e.state}`] : []),
    `  whiteout ${e.whiteoutFormat}`,
    ...Object.entries(e.names ?? {}).map(([name, address]) => `  name     ${name} = ${address}`),
    // In the order they are matched (host, network, then *), with every option spelled out.
    ...byPrecedence(rules).map((r) => `  client   ${r.spec}(${describeOptions(r.options)})`),
  ];
}
