/**
 * The process and Node.js metrics every Node service exports, under prom-client's default
 * names (so existing dashboards and alerts work), collected when scraped.
 *
 * Why not prom-client's collectDefaultMetrics: it observes every garbage collection
 * (nodejs_gc_duration_seconds) through a PerformanceObserver, and with this server's small
 * young generation (a collection every few MiB allocated) that cost 12% more CPU per 4 KiB
 * READ (bench/metrics-overhead.ts: 35.5 -> 40.0 µs; 38.0 -> 39.0 µs without it). The
 * event-loop delay, which shows what the collections do to calls, stays.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Gauge, type Registry } from 'prom-client';
import { totalsCounter } from './tally.js';

export function registerProcessMetrics(registry: Registry): void {
  const registers = [registry];
  const started = Math.round(Date.now() / 1000 - process.uptime());
  const cpu = (name: string, help: string, pick: (u: NodeJS.CpuUsage) => number): void =>
    totalsCounter({ name, help, registers }, () => [[{}, pick(process.cpuUsage()) / 1e6]]);
  cpu('process_cpu_user_seconds_total', 'User CPU time spent in seconds.', (u) => u.user);
  cpu('process_cpu_system_seconds_total', 'System CPU time spent in seconds.', (u) => u.system);
  cpu('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', (u) => u.user + u.system);
  new Gauge({ name: 'process_start_time_seconds', help: 'Start time of the process since unix epoch in seconds.', registers, collect() { this.set(started); } });
  new Gauge({ name: 'process_resident_memory_bytes', help: 'Resident memory size in bytes.', registers, collect() { this.set(process.memoryUsage.rss()); } });
  new Gauge({ name: 'process_open_fds', help: 'Number of open file descriptors.', registers, collect() { this.set(readdirSync('/proc/self/fd').length - 1); } });
  new Gauge({
    name: 'process_max_fds', help: 'Maximum number of open file descriptors.', registers,
    collect() {
      const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
      if (m) this.set(Number(m[1]));
    },
  });
  const heap = (name: string, help: string, pick: (m: NodeJS.MemoryUsage) => number): void => {
    new Gauge({ name, help, registers, collect() { this.set(pick(process.memoryUsage())); } });
  };
  heap('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.', (m) => m.heapTotal);
  heap('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.', (m) => m.heapUsed);
  heap('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.', (m) => m.external);
  new Gauge({ name: 'nodejs_version_info', help: 'Node.js version info.', labelNames: ['version'], registers, collect() { this.set({ version: process.version }, 1); } });

  // The delay of the event loop since the previous scrape, sampled by a 10 ms timer. Node
  // records the time between the timer's runs, so an idle loop reads 10 ms; reported here is
  // the delay beyond that period, what a call waiting to run would have waited.
  const RESOLUTION_MS = 10;
  const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  delay.enable();
  const stats: [string, string, () => number][] = [
    ['nodejs_eventloop_lag_min_seconds', 'The minimum event loop delay since the previous scrape.', () => delay.min],
    ['nodejs_eventloop_lag_max_seconds', 'The maximum event loop delay since the previous scrape.', () => delay.max],
    ['nodejs_eventloop_lag_mean_seconds', 'The mean event loop delay since the previous scrape.', () => delay.mean],
    ['nodejs_eventloop_lag_p50_seconds', 'The 50th percentile of event loop delays since the previous scrape.', () => delay.percentile(50)],
    ['nodejs_eventloop_lag_p90_seconds', 'The 90th percentile of event loop delays since the previous scrape.', () => delay.percentile(90)],
    ['nodejs_eventloop_lag_p99_seconds', 'The 99th percentile of event loop delays since the previous scrape.', () => delay.percentile(99)],
  ];
  // The first of these gauges a scrape collects takes every figure from the same samples and
  // starts the next interval; the others report that snapshot (a registry collects in order).
  let snapshot: number[] = stats.map(() => 0);
  stats.forEach(([name, help], i) => {
    new Gauge({
      name, help, registers,
      collect() {
        if (i === 0) {
          snapshot = stats.map(([, , read]) => (delay.count > 0 ? Math.max(0, read() / 1e9 - RESOLUTION_MS / 1000) : 0));
          delay.reset();
        }
        this.set(snapshot[i]!);
      },
    });
  });
}
