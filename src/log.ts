import winston from 'winston';

/**
 * One root logger; each component takes a child so every line says where it came from.
 * The level comes from UNION_NFSD_LOG (error|warn|info|debug), default info. Lines go to
 * stderr (stdout carries only the `ready` line), as text for a person or, with
 * --log-format json, one JSON object per line for a log shipper: timestamp, level,
 * component, message, and the fields a line carries (client, export, procedure, ...).
 */
const text = winston.format.combine(
  winston.format.timestamp(),
  winston.format.printf(({ timestamp, level, message, component, ...rest }) => {
    const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
    return `${String(timestamp)} ${level} [${String(component ?? 'main')}] ${String(message)}${extra}`;
  }),
);

const json = winston.format.combine(winston.format.timestamp(), winston.format.json());

export const logger = winston.createLogger({
  level: process.env['UNION_NFSD_LOG'] ?? 'info',
  format: text,
  transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] })],
});

export type Logger = winston.Logger;

export function child(component: string): Logger {
  return logger.child({ component });
}

/** Switch every logger, children included, to `format` (--log-format). */
export function setLogFormat(format: 'text' | 'json'): void {
  logger.format = format === 'json' ? json : text;
}
