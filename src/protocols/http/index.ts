export { sendHttpError } from './errors.ts';
export {
  CORRELATION_FIELDS,
  createLogger,
  LOG_LEVELS,
  type LoggerOptions,
  type LogLevel,
  REDACT_PATHS,
  REDACTED,
  redactUrl,
} from './logger.ts';
export { createMetrics, type MetricsOptions, type WardenMetrics } from './metrics.ts';
export { createSseHandler, type SseHandler, type SseOptions } from './sse.ts';
