import winston from 'winston';

/**
 * One root logger; each component takes a child so every line says where it came from.
 * The level comes from UNION_NFSD_LOG (error|warn|info|debug), default info.
 */
export const logger = winston.createLogger({
  level: process.env['UNION_NFSD_LOG'] ?? 'info',
  format: winston.format.combine(
    winston.format.timestamp(),
    winston.format.printf(({ timestamp, level, message, component, ...rest }) => {
      const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
      return `${String(timestamp)} ${level} [${String(component ?? 'main')}] ${String(message)}${extra}`;
    }),
  ),
  transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] })],
});

export type Logger = winston.Logger;

export function child(component: string): Logger {
  return logger.child({ component });
}
