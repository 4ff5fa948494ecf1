// Types for the layer table, so tests can read it (core-layers.js is plain JS for ESLint).
import type { Rule } from 'eslint';

export declare const CORE_LAYERS: Readonly<Record<string, readonly string[]>>;
export declare const coreLayersRule: Rule.RuleModule;
declare const plugin: { rules: { 'core-layers': Rule.RuleModule } };
export default plugin;
/** The layer of core/ a file is in ('.', 'virtio', 'api/server', ...), or null outside core/. */
export declare function coreFolder(coreDir: string, file: string): string | null;
