#!/usr/bin/env -S GLIBC_TUNABLES=glibc.malloc.trim_threshold=33554432 node --max-semi-space-size=2 --heap-growing-percent=60
/**
 * `union-nfsd`: parse the command line, start the server, print how to mount it, and shut down
 * cleanly on SIGINT/SIGTERM. The single `union-nfsd ready ...` line on stdout is a contract
 * (`union-nfsd ready nfs=N mount=N portmap=own|rpcbind|off`, then ` metrics=N` with --metrics):
 * scripts and tests wait for it and read the ports from it.
 * Why the settings on the first line (also in package.json's start script; bench/run.ts reads
 * them from here; bench/README.md has the measurements):
 * - 2 MiB semi-spaces: a server's garbage is per-call and short-lived, and V8's default 16 MiB
 *   let the young generation hold ~40 MiB of it, for no measurable throughput.
 * - a heap growing factor of 1.6: V8's default let the old generation grow to ~4x its live
 *   size under load. It used to be capped through a 1 GiB old space, which has the same
 *   effect on growth but also made V8 start a full mark-compact every ~15 MiB received once
 *   100,000 objects were live (1 GiB of WRITEs after a 100k listing: 50-70 of them, 5.5 s of
 *   CPU against 2.0 s without; bench/README.md). The heap is not capped below V8's default.
 * - glibc's trim threshold at 32 MiB: socket reads arrive in 64 KiB buffers that glibc gave
 *   back to the kernel after every collection and faulted in again (200,000 page faults per
 *   GiB written, most of a WRITE's system time).
 */
import { parseCommandLine, USAGE, UsageError, type Parsed, type ServerOptions } from './config.js';
import { loadConfigFile } from './config-file.js';
import { sendControl } from './control.js';
import { prepareDemo } from './demo.js';
import { checkConfig } from './check-config.js';
import { child, setLogFormat } from './log.js';
import { startServer } from './server.js';
import { defaultCacheDir, LayerCache } from './image/cache.js';

const log = child('main');

function mountHints(o: ServerOptions, nfsPort: number, mountPort: number, portmap: string): string {
  const host = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host;
  const ports = portmap === 'off' ? `,port=${nfsPort},mountport=${mountPort},mountproto=tcp` : '';
  const url = portmap === 'off' ? `?nfsport=${nfsPort}&mountport=${mountPort}` : '';
  return o.exports.flatMap((e) => [
    `Mount it (Linux):  mount -t nfs -o vers=3${ports === '' ? '' : `${ports},nolock`} ${host}:${e.path} /mnt`,
    `libnfs:            nfs-ls nfs://${host}${e.path}${url}` +
      (e.defaultClients ? '   (as root: the default rule admits ports below 1024 only)' : ''),
  ]).join('\n');
}

/** The options to serve: the command line's, the demo's layers, or a configuration file's. */
function optionsOf(parsed: Parsed): ServerOptions {
  const o = parsed.options;
  if (parsed.config !== undefined) {
    const file = loadConfigFile(parsed.config);
    return {
      ...o,
      exports: file.exports,
      ...(!parsed.given.has('host') && file.host !== undefined && { host: file.host }),
      ...(!parsed.given.has('port') && file.port !== undefined && { port: file.port }),
      ...(!parsed.given.has('mountPort') && file.mountPort !== undefined && { mountPort: file.mountPort }),
      ...(!parsed.given.has('portmap') && file.portmap !== undefined && { portmap: file.portmap }),
      ...(!parsed.given.has('busyPollUs') && { busyPollUs: file.busyPollUs }),
      ...(!parsed.given.has('control') && file.control !== undefined && { control: file.control }),
      ...(!parsed.given.has('metrics') && file.metrics !== undefined && { metrics: file.metrics }),
      ...(!parsed.given.has('graceSeconds') && file.graceSeconds !== undefined && { graceSeconds: file.graceSeconds }),
      ...(!parsed.given.has('nsmDir') && file.nsmDir !== undefined && { nsmDir: file.nsmDir }),
      ...(!parsed.given.has('imageCache') && file.imageCache !== undefined && { imageCache: file.imageCache }),
      ...(!parsed.given.has('plainHttp') && file.plainHttp !== undefined && { plainHttp: file.plainHttp }),
      // Each limit on the command line overrides the file's.
      ...((file.limits !== undefined || o.limits !== undefined) && { limits: { ...file.limits, ...o.limits } }),
    };
  }
  if (!parsed.demo) return o;
  const demo = prepareDemo();
  log.info(`no --lower given: serving the demo union (lowers ${demo.lowers.join(':')}, upper ${demo.upper})`);
  return { ...o, exports: o.exports.map((e) => ({ ...e, ...demo })) };
}

/** A configuration mistake: exit 2 with the message (and the usage, for a command-line one). */
function usageError(err: UsageError, withUsage: boolean): never {
  process.stderr.write(`union-nfsd: ${err.message}\n${withUsage ? `\n${USAGE}\n` : ''}`);
  process.exit(2);
}

async function main(): Promise<void> {
  let parsed: Parsed;
  try {
    parsed = parseCommandLine(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) usageError(err, true);
    throw err;
  }
  if (parsed.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  setLogFormat(parsed.logFormat);
  if (parsed.checkConfig !== undefined) {
    const report = await checkConfig(parsed.checkConfig).catch((err: unknown) => {
      if (err instanceof UsageError) usageError(err, false);
      throw err;
    });
    process.stdout.write(`${report}\n`);
    return;
  }
  if (parsed.imageGc === true) {
    const cache = new LayerCache(parsed.options.imageCache ?? defaultCacheDir());
    const removed = await cache.gc();
    process.stdout.write(`${removed.map((p) => `removed ${p}\n`).join('')}${cache.dir}: ${removed.length} removed\n`);
    return;
  }
  if (parsed.reset !== undefined) {
    const { control, client } = parsed.reset;
    const answer = await sendControl(control, { op: 'reset', export: parsed.reset.export, client }).catch((err: unknown) => ({ ok: false, error: (err as Error).message }));
    if (!answer.ok) {
      process.stderr.write(`union-nfsd: reset of ${client} on ${parsed.reset.export} failed: ${answer.error ?? 'no reason given'}\n`);
      process.exit(1);
    }
    process.stdout.write(`reset ${client} on ${parsed.reset.export}\n`);
    return;
  }
  let options: ServerOptions;
  try {
    options = optionsOf(parsed);
  } catch (err) {
    if (err instanceof UsageError) usageError(err, false);
    throw err;
  }

  const server = await startServer(options).catch((err: unknown) => {
    if (err instanceof UsageError) usageError(err, false);
    throw err;
  });
  const mountPort = server.mountPort ?? server.nfsPort;
  process.stdout.write(`union-nfsd ready nfs=${server.nfsPort} mount=${mountPort} portmap=${server.portmap}` +
    (server.metricsPort !== undefined ? ` metrics=${server.metricsPort}` : '') + '\n');
  const hints = mountHints(options, server.nfsPort, mountPort, server.portmap);
  // Every stderr line is a log record in JSON mode; for a person, the hints stand out as plain text.
  if (parsed.logFormat === 'json') for (const line of hints.split('\n')) log.info(line);
  else process.stderr.write(`${hints}\n`);

  let closing = false;
  const stop = (signal: string): void => {
    if (closing) return;
    closing = true;
    log.info(`${signal}: shutting down`);
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error(`shutdown failed: ${String(err)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', () => {
    if (parsed.config === undefined) {
      log.warn('SIGHUP: nothing to reread (started without --config)');
      return;
    }
    log.info(`SIGHUP: rereading ${parsed.config}`);
    let exports;
    try {
      exports = loadConfigFile(parsed.config).exports;
    } catch (err) {
      log.error(`SIGHUP: ${(err as Error).message}; still serving the previous configuration`);
      return;
    }
    // Listening settings (host, ports, portmap, control, metrics) take a restart; exports change now.
    server.reload(exports).then(
      () => log.info(`SIGHUP: serving ${parsed.config} as reread`),
      (err: unknown) => log.error(`SIGHUP: ${(err as Error).message}`),
    );
  });
}

main().catch((err: unknown) => {
  const e = err as NodeJS.ErrnoException;
  log.error(e.code === 'EADDRINUSE' || e.code === 'EACCES' ? `cannot listen: ${e.message}` : (e.stack ?? String(err)));
  process.exit(1);
});
