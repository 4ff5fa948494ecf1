/**
 * The capture filter language for the renderer (which imports only
 * core/api): the parser is pure (core/capture/filter.ts, no node:*), so the
 * filter bar shows an error and its column as the person types, before the
 * service runs the filter over the capture.
 */
export { FilterError, caretLine, parseFilter, type Filter } from '../capture/filter.js';
