// The engine's log, filtered by WebLLM's levels (setLogLevel / MLCEngineConfig.logLevel;
// default WARN). One logger per host: the worker's engine has its own, set through the client.
import { InvalidRequestError } from '../errors.ts';
import { LOG_LEVELS, type LogLevel } from './protocol.ts';

let level: number = LOG_LEVELS.WARN;

export function setLogLevel(l: LogLevel): void {
  if (!(typeof l === 'string' && l in LOG_LEVELS)) throw new InvalidRequestError('logLevel', Object.keys(LOG_LEVELS).join(' | '), l);
  level = LOG_LEVELS[l];
}

export function getLogLevel(): LogLevel {
  return (Object.keys(LOG_LEVELS) as LogLevel[]).find((k) => LOG_LEVELS[k] === level)!;
}

export const log = {
  debug: (...a: unknown[]) => void (level <= LOG_LEVELS.DEBUG && console.debug('[pop-llm]', ...a)),
  info: (...a: unknown[]) => void (level <= LOG_LEVELS.INFO && console.info('[pop-llm]', ...a)),
  warn: (...a: unknown[]) => void (level <= LOG_LEVELS.WARN && console.warn('[pop-llm]', ...a)),
  error: (...a: unknown[]) => void (level <= LOG_LEVELS.ERROR && console.error('[pop-llm]', ...a)),
};
